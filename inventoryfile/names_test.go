package inventoryfile_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/inventoryfile"
)

// The importer applies the Store's name rules: look-alike names are
// rejected naming the entry and the field, names are stored in NFC, a
// name in NFD or another case is the stored entry (unchanged on a second
// import, a duplicate within one file), references resolve in either
// spelling, and sizes above 2^53-1 are rejected.
func TestImportNameRules(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	s := openStore(t, db)
	entry := func(name, version string) string {
		return `{"name": "` + name + `", "version": "` + version + `", "path": "models/m.onnx", "size_bytes": 10, "hashes": {"sha256": "` + sha64 + `"}, "license": "BSD-3-Clause"}`
	}
	file := inv(okLicense, "", strings.Join([]string{
		entry(`cafe\u0301`, "1"),
		entry(`CAF\u00c9`, "1"),
		entry(`resnet50 `, "1"),
		entry(`res\u200bnet50`, "1"),
		entry(`m`, `1\u202e`),
		`{"name": "big", "version": "1", "path": "m.onnx", "size_bytes": 9007199254740992, "license": "BSD-3-Clause"}`,
	}, ", "), `{"version_tag": "r1", "artifacts": ["CAFE\u0301@1"], "published_by": "me"}`)
	rep, err := importBytes(t, s, []byte(file), nil)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Artifacts.Inserted)
	require.Equal(t, 5, rep.Artifacts.Rejected)
	require.Equal(t, 1, rep.Versions.Inserted, "a reference in another spelling resolves")
	want := map[int]string{1: "same key", 2: "white space", 3: "U+200B", 4: "U+202E", 5: "2^53-1"}
	for _, r := range rep.Rejections {
		if r.Section != inventoryfile.SectionArtifacts {
			continue
		}
		require.Contains(t, r.Reason, want[r.Index], "%v", r)
		if r.Index >= 2 && r.Index <= 3 {
			require.Equal(t, "name", r.Field)
		}
		delete(want, r.Index)
	}
	require.Empty(t, want, "every bad entry rejected: %v", rep.Rejections)

	a, err := s.GetArtifactByKey(t.Context(), "café", "1")
	require.NoError(t, err)
	require.Equal(t, "caf\u00e9", a.Name, "stored in NFC")
	require.True(t, a.Published)

	again := inv(okLicense, "", entry(`Caf\u00e9`, "1"), "")
	rep, err = importBytes(t, s, []byte(again), nil)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Artifacts.Unchanged, "another spelling of a stored name is that entry: %v", rep.Rejections)
}
