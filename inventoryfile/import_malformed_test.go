package inventoryfile_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/inventoryfile"
)

// Valid entries of each section, for building malformed files around.
const (
	okLicense  = `{"spdx_id": "BSD-3-Clause", "commercial_use": true}`
	okDataset  = `{"name": "ds", "version": "1", "path": "datasets/ds.jsonl", "size_bytes": 10, "hashes": {"sha256": "` + sha64 + `"}, "license": "BSD-3-Clause"}`
	okArtifact = `{"name": "m", "version": "1", "path": "models/m.onnx", "size_bytes": 10, "hashes": {"sha256": "` + sha64 + `"}, "license": "BSD-3-Clause", "datasets": ["ds@1"]}`
	sha64      = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

// inv builds an inventory from the JSON text of its sections' entries.
func inv(licenses, datasets, artifacts, versions string) string {
	return fmt.Sprintf(`{"format_version": 1, "licenses": [%s], "datasets": [%s], "artifacts": [%s], "versions": [%s]}`,
		licenses, datasets, artifacts, versions)
}

// artifact returns okArtifact with the fields of extra (JSON members)
// replacing or adding to its own.
func artifact(extra string) string {
	return `{` + extra + `, "path": "models/m.onnx", "size_bytes": 10, "license": "BSD-3-Clause"}`
}

// Malformed and hostile inputs each give a typed error or a rejection
// that names the entry. They run as dry runs against a database holding
// the sample inventory, so that references can resolve (or not) to
// stored entries.
func TestImportMalformedInputs(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	s := openStore(t, db)
	_, err := importBytes(t, s, sample(t), nil)
	require.NoError(t, err)
	before := countDocs(t, db)

	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	fatal := []struct {
		name, input, contains string
		opts                  *inventoryfile.ImportOptions
	}{
		{name: "empty", input: "", contains: "the file ends inside the inventory"},
		{name: "not an object", input: `[]`, contains: "the inventory must be a JSON object"},
		{name: "truncated", input: `{"licenses": [` + okLicense, contains: "the file ends inside licenses"},
		{name: "bad JSON in an entry", input: inv(`{"spdx_id": "MIT",}`, "", "", ""), contains: "invalid JSON in licenses[0]"},
		{name: "bad JSON between entries", input: `{"licenses": [` + okLicense + ` ` + okLicense + `]}`, contains: "invalid JSON"},
		{name: "other format version", input: `{"format_version": 2}`, contains: "format_version 2 is not supported"},
		{name: "format version of another type", input: `{"format_version": true}`, contains: "format_version"},
		{name: "data after the inventory", input: `{} {}`, contains: "data after the inventory object"},
		{name: "no format_version", input: `{}`, contains: "format_version is missing"},
		{name: "no format_version before sections", input: `{"licenses": []}`, contains: "format_version is missing"},
		{name: "entry over MaxEntryBytes", input: inv("", "", artifact(`"name": "m", "version": "1", "notes": "`+strings.Repeat("x", 5000)+`"`), ""),
			opts: &inventoryfile.ImportOptions{MaxEntryBytes: 4096}, contains: "artifacts[0] is larger than 4096 bytes"},
		{name: "huge unknown value", input: `{"extras": "` + strings.Repeat("y", 5000) + `"}`,
			opts: &inventoryfile.ImportOptions{MaxEntryBytes: 4096}, contains: "is larger than 4096 bytes"},
		{name: "deep nesting outside the sections", input: `{"extras": ` + deep + `}`, contains: "extras is nested deeper than 32 levels"},
		{name: "a number where the file starts", input: `42`, contains: "must be a JSON object"},
	}
	for _, c := range fatal {
		t.Run("fatal/"+c.name, func(t *testing.T) {
			o := &inventoryfile.ImportOptions{DryRun: true}
			if c.opts != nil {
				o = c.opts
				o.DryRun = true
			}
			_, err := importBytes(t, s, []byte(c.input), o)
			requireCode(t, err, harmonia.CodeInvalid, c.contains)
		})
	}

	rejected := []struct {
		name, input string
		want        inventoryfile.Rejection // Reason: a part of it
	}{
		{"unknown field", inv(`{"spdx_id": "MIT", "spdx": "MIT"}`, "", "", ""),
			inventoryfile.Rejection{Section: "licenses", Index: 0, Key: "MIT", Field: "spdx", Reason: "unknown field"}},
		{"unknown SPDX id", inv(`{"spdx_id": "Not-A-License"}`, "", "", ""),
			inventoryfile.Rejection{Section: "licenses", Key: "Not-A-License", Field: "spdx_id", Reason: "not a valid SPDX license identifier"}},
		{"missing spdx_id", inv(`{"commercial_use": true}`, "", "", ""),
			inventoryfile.Rejection{Section: "licenses", Field: "spdx_id", Reason: "is required"}},
		{"wrong type", inv(`{"spdx_id": "MIT", "commercial_use": "yes"}`, "", "", ""),
			inventoryfile.Rejection{Section: "licenses", Key: "MIT", Field: "commercial_use", Reason: "must be true or false, not string"}},
		{"entry not an object", inv(okLicense+`, "MIT"`, "", "", ""),
			inventoryfile.Rejection{Section: "licenses", Index: 1, Reason: "an entry must be a JSON object"}},
		{"null entry", inv(`null`, "", "", ""),
			inventoryfile.Rejection{Section: "licenses", Reason: "an entry must be a JSON object"}},
		{"missing name", inv("", `{"version": "1", "path": "d.jsonl"}`, "", ""),
			inventoryfile.Rejection{Section: "datasets", Key: "@1", Field: "name", Reason: "is required"}},
		{"negative size", inv("", `{"name": "d", "version": "1", "path": "d.jsonl", "size_bytes": -5}`, "", ""),
			inventoryfile.Rejection{Section: "datasets", Key: "d@1", Field: "size_bytes", Reason: "must be at least 0"}},
		{"fractional size", inv("", `{"name": "d", "version": "1", "path": "d.jsonl", "size_bytes": 1.5}`, "", ""),
			inventoryfile.Rejection{Section: "datasets", Key: "d@1", Field: "size_bytes", Reason: "must be a whole number, not number 1.5"}},
		{"artifact: fractional size", inv(okLicense, okDataset, `{"name": "m", "version": "1", "path": "m.onnx", "size_bytes": 1.5}`, ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "m@1", Field: "size_bytes", Reason: "must be a whole number, not number 1.5"}},
		{"artifact: size as a string", inv(okLicense, okDataset, `{"name": "m", "version": "1", "path": "m.onnx", "size_bytes": "1024"}`, ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "m@1", Field: "size_bytes", Reason: "must be a whole number, not string"}},
		{"artifact: tags not a list", inv(okLicense, okDataset, `{"name": "m", "version": "1", "path": "m.onnx", "tags": "vision"}`, ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "m@1", Field: "tags", Reason: "must be an array, not string"}},
		{"dataset: tags not a list", inv(okLicense, `{"name": "d", "version": "1", "path": "d.jsonl", "tags": {"a": 1}}`, "", ""),
			inventoryfile.Rejection{Section: "datasets", Key: "d@1", Field: "tags", Reason: "must be an array, not object"}},
		{"bad sha256", inv("", `{"name": "d", "version": "1", "path": "d.jsonl", "hashes": {"sha256": "XYZ"}}`, "", ""),
			inventoryfile.Rejection{Section: "datasets", Key: "d@1", Field: "hashes.sha256", Reason: "must be 64 lowercase hex characters"}},
		{"hashes not an object", inv("", `{"name": "d", "version": "1", "path": "d.jsonl", "hashes": "abc"}`, "", ""),
			inventoryfile.Rejection{Section: "datasets", Key: "d@1", Field: "hashes", Reason: "must be an object, not string"}},
		{"unknown license", inv("", `{"name": "d", "version": "1", "path": "d.jsonl", "license": "GPL-3.0-only"}`, "", ""),
			inventoryfile.Rejection{Section: "datasets", Key: "d@1", Field: "license", Reason: "no license with spdx_id GPL-3.0-only"}},
		{"path escaping with ..", inv("", `{"name": "d", "version": "1", "path": "../etc/passwd"}`, "", ""),
			inventoryfile.Rejection{Section: "datasets", Key: "d@1", Field: "path", Reason: "must not contain .. segments"}},
		{"uppercase tag", inv("", `{"name": "d", "version": "1", "path": "d.jsonl", "tags": ["Vision"]}`, "", ""),
			inventoryfile.Rejection{Section: "datasets", Key: "d@1", Field: "tags[0]", Reason: `tag "Vision" must be`}},
		{"deep nesting in an entry", inv("", `{"name": "d", "version": "1", "path": "d.jsonl", "tags": `+deep+`}`, "", ""),
			inventoryfile.Rejection{Section: "datasets", Reason: "nested deeper than 8 levels"}},
		{"dangling dataset", inv("", "", artifact(`"name": "m", "version": "1", "datasets": ["nope@1"]`), ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "m@1", Field: "datasets[0]", Reason: "no dataset nope@1 in the database nor earlier in the file"}},
		{"reference without version", inv("", "", artifact(`"name": "m", "version": "1", "datasets": ["coco-subset"]`), ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "m@1", Field: "datasets[0]", Reason: `"coco-subset" is not a name@version reference`}},
		{"reference listed twice", inv("", "", artifact(`"name": "m", "version": "1", "datasets": ["coco-subset@2024.1", "coco-subset@2024.1"]`), ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "m@1", Field: "datasets[1]", Reason: "is listed twice"}},
		{"duplicate entry", inv(okLicense, okDataset, okArtifact+","+okArtifact, ""),
			inventoryfile.Rejection{Section: "artifacts", Index: 1, Key: "m@1", Reason: "duplicate of artifacts[0]"}},
		{"bad time", inv("", "", artifact(`"name": "m", "version": "1", "created_at": "yesterday"`), ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "m@1", Field: "created_at", Reason: `must be an RFC 3339 time`}},
		{"huge string", inv("", "", artifact(`"name": "`+strings.Repeat("n", 10000)+`", "version": "1"`), ""),
			inventoryfile.Rejection{Section: "artifacts", Field: "name", Reason: "must be at most 200 characters"}},
		{"control character", inv("", "", artifact(`"name": "m\u0001", "version": "1"`), ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "m\x01@1", Field: "name", Reason: "must not contain control characters"}},
		{"NUL byte in a path", inv("", "", `{"name": "m", "version": "1", "path": "models/m\u0000.onnx"}`, ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "m@1", Field: "path", Reason: "must not contain NUL bytes"}},
		{"published content changed", inv("", "", `{"name": "resnet50", "version": "1.2.0", "path": "models/resnet50-1.2.0.onnx", "size_bytes": 1}`, ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "resnet50@1.2.0", Reason: "is published in an inventory version"}},
		{"reference to a rejected entry", inv(okLicense, `{"name": "ds", "version": "1"}`, okArtifact, ""),
			inventoryfile.Rejection{Section: "artifacts", Key: "m@1", Field: "datasets[0]", Reason: "dataset ds@1 was rejected (datasets[0])"}},
		{"dangling artifact in a version", inv("", "", "", `{"version_tag": "v1", "artifacts": ["ghost@1"], "published_by": "me"}`),
			inventoryfile.Rejection{Section: "versions", Key: "v1", Field: "artifacts[0]", Reason: "no model_artifact ghost@1"}},
		{"empty version", inv("", "", "", `{"version_tag": "v1", "published_by": "me"}`),
			inventoryfile.Rejection{Section: "versions", Key: "v1", Field: "artifacts", Reason: "a version needs at least one artifact or dataset"}},
		{"version without publisher", inv("", "", "", `{"version_tag": "v1", "artifacts": ["resnet50@1.2.0"]}`),
			inventoryfile.Rejection{Section: "versions", Key: "v1", Field: "published_by", Reason: "is required"}},
		{"duplicate version tag", inv("", "", "", `{"version_tag": "v1", "artifacts": ["resnet50@1.2.0"], "published_by": "me"}, {"version_tag": "v1", "artifacts": ["bert-base@1.0.0"], "published_by": "me"}`),
			inventoryfile.Rejection{Section: "versions", Index: 1, Key: "v1", Field: "version_tag", Reason: "duplicate of versions[0]"}},
		{"published version with other contents", inv("", "", "", `{"version_tag": "2026.10.0", "artifacts": ["resnet50@1.3.0"], "published_by": "me"}`),
			inventoryfile.Rejection{Section: "versions", Key: "2026.10.0", Field: "version_tag", Reason: "exists with other contents"}},
		{"unpublishable artifact", inv(okLicense, okDataset, `{"name": "nosha", "version": "1", "path": "m.onnx", "license": "BSD-3-Clause"}`, `{"version_tag": "v1", "artifacts": ["nosha@1"], "published_by": "me"}`),
			inventoryfile.Rejection{Section: "versions", Key: "v1", Field: "artifacts[0]", Reason: "nosha@1 has no hashes.sha256"}},
		{"sections out of order", `{"format_version": 1, "versions": [{"version_tag": "v1", "artifacts": ["m@1"], "published_by": "me"}], "licenses": [` + okLicense + `], "datasets": [` + okDataset + `], "artifacts": [` + okArtifact + `]}`,
			inventoryfile.Rejection{Section: "versions", Key: "v1", Field: "artifacts[0]", Reason: "sections are read in order: licenses, datasets, artifacts, versions"}},
		{"unknown top-level field", `{"format_version": 1, "extras": {"a": [1, 2]}}`,
			inventoryfile.Rejection{Section: "file", Index: -1, Field: "extras", Reason: "unknown top-level field"}},
		{"section not an array", `{"format_version": 1, "licenses": {"spdx_id": "MIT"}}`,
			inventoryfile.Rejection{Section: "file", Index: -1, Field: "licenses", Reason: "must be an array"}},
		{"section twice", `{"format_version": 1, "licenses": [], "licenses": [` + okLicense + `]}`,
			inventoryfile.Rejection{Section: "file", Index: -1, Field: "licenses", Reason: "the section appears twice"}},
	}
	require.GreaterOrEqual(t, len(fatal)+len(rejected), 30)
	for _, c := range rejected {
		t.Run("rejected/"+c.name, func(t *testing.T) {
			rep, err := importBytes(t, s, []byte(c.input), &inventoryfile.ImportOptions{DryRun: true})
			require.NoError(t, err)
			require.NotEmpty(t, rep.Rejections)
			var got *inventoryfile.Rejection
			for i := range rep.Rejections {
				r := rep.Rejections[i]
				if r.Section == c.want.Section && r.Index == c.want.Index && r.Field == c.want.Field && strings.Contains(r.Reason, c.want.Reason) {
					got = &r
				}
			}
			require.NotNil(t, got, "want %+v in %+v", c.want, rep.Rejections)
			if c.want.Key != "" {
				require.Equal(t, c.want.Key, got.Key)
			}
		})
	}
	require.Equal(t, before, countDocs(t, db), "dry runs wrote nothing")
}
