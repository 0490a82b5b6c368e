package harmonia_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

const goodSHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func validArtifact() *harmonia.ModelArtifact {
	return &harmonia.ModelArtifact{
		Name: "resnet50", Version: "1.2.0", Path: "models/resnet50.onnx", SizeBytes: 102400,
		Hashes: harmonia.Hashes{SHA256: goodSHA}, Tags: []string{"vision", "onnx"}, CreatedBy: "ml-platform",
	}
}

func requireInvalid(t *testing.T, err error, entity, field string) *harmonia.Error {
	t.Helper()
	require.Error(t, err)
	require.True(t, errors.Is(err, harmonia.ErrInvalid), "want an invalid error, got %v", err)
	var he *harmonia.Error
	require.True(t, errors.As(err, &he))
	require.Equal(t, entity, he.Entity)
	require.Equal(t, field, he.Field, "error: %v", err)
	require.NotEmpty(t, he.Reason)
	return he
}

func TestValidateArtifact(t *testing.T) {
	t.Parallel()
	require.NoError(t, validArtifact().Validate())

	tests := []struct {
		name   string
		mutate func(a *harmonia.ModelArtifact)
		field  string
	}{
		{"empty name", func(a *harmonia.ModelArtifact) { a.Name = "" }, "name"},
		{"long name", func(a *harmonia.ModelArtifact) { a.Name = strings.Repeat("n", 201) }, "name"},
		{"control char in name", func(a *harmonia.ModelArtifact) { a.Name = "res\x07net" }, "name"},
		{"newline in name", func(a *harmonia.ModelArtifact) { a.Name = "res\nnet" }, "name"},
		{"invalid utf8 name", func(a *harmonia.ModelArtifact) { a.Name = "res\xffnet" }, "name"},
		{"empty version", func(a *harmonia.ModelArtifact) { a.Version = "" }, "version"},
		{"long version", func(a *harmonia.ModelArtifact) { a.Version = strings.Repeat("1", 101) }, "version"},
		{"NUL in version", func(a *harmonia.ModelArtifact) { a.Version = "1\x000" }, "version"},
		{"negative size", func(a *harmonia.ModelArtifact) { a.SizeBytes = -1 }, "size_bytes"},
		{"short sha", func(a *harmonia.ModelArtifact) { a.Hashes.SHA256 = "abc" }, "hashes.sha256"},
		{"uppercase sha", func(a *harmonia.ModelArtifact) { a.Hashes.SHA256 = strings.ToUpper(goodSHA) }, "hashes.sha256"},
		{"non-hex sha", func(a *harmonia.ModelArtifact) { a.Hashes.SHA256 = strings.Repeat("g", 64) }, "hashes.sha256"},
		{"65-char sha", func(a *harmonia.ModelArtifact) { a.Hashes.SHA256 = goodSHA + "0" }, "hashes.sha256"},
		{"empty path", func(a *harmonia.ModelArtifact) { a.Path = "" }, "path"},
		{"dotdot path", func(a *harmonia.ModelArtifact) { a.Path = "../etc/passwd" }, "path"},
		{"inner dotdot path", func(a *harmonia.ModelArtifact) { a.Path = "models/../../x" }, "path"},
		{"unclean path", func(a *harmonia.ModelArtifact) { a.Path = "models//x.onnx" }, "path"},
		{"NUL path", func(a *harmonia.ModelArtifact) { a.Path = "models/x\x00.onnx" }, "path"},
		{"bad scheme", func(a *harmonia.ModelArtifact) { a.Path = "ftp://host/x" }, "path"},
		{"s3 without key", func(a *harmonia.ModelArtifact) { a.Path = "s3://bucket" }, "path"},
		{"s3 bad bucket", func(a *harmonia.ModelArtifact) { a.Path = "s3://B_ucket/key" }, "path"},
		{"s3 dotdot", func(a *harmonia.ModelArtifact) { a.Path = "s3://bucket/a/../../b" }, "path"},
		{"https without host", func(a *harmonia.ModelArtifact) { a.Path = "https:///x" }, "path"},
		{"file relative", func(a *harmonia.ModelArtifact) { a.Path = "file:relative" }, "path"},
		{"duplicate tags", func(a *harmonia.ModelArtifact) { a.Tags = []string{"a", "a"} }, "tags"},
		{"too many tags", func(a *harmonia.ModelArtifact) {
			a.Tags = nil
			for i := range 65 {
				a.Tags = append(a.Tags, "t"+strings.Repeat("x", i))
			}
		}, "tags"},
		{"uppercase tag", func(a *harmonia.ModelArtifact) { a.Tags = []string{"Vision"} }, "tags[0]"},
		{"empty tag", func(a *harmonia.ModelArtifact) { a.Tags = []string{"ok", ""} }, "tags[1]"},
		{"long tag", func(a *harmonia.ModelArtifact) { a.Tags = []string{strings.Repeat("t", 65)} }, "tags[0]"},
		{"duplicate dataset ids", func(a *harmonia.ModelArtifact) {
			id := bson.NewObjectID()
			a.DatasetIDs = []bson.ObjectID{id, id}
		}, "dataset_ids"},
		{"control char in created_by", func(a *harmonia.ModelArtifact) { a.CreatedBy = "me\x1b[31m" }, "created_by"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := validArtifact()
			tc.mutate(a)
			requireInvalid(t, a.Validate(), harmonia.EntityArtifact, tc.field)
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	a := &harmonia.ModelArtifact{SizeBytes: -5, Hashes: harmonia.Hashes{SHA256: "xyz"}}
	he := requireInvalid(t, a.Validate(), harmonia.EntityArtifact, "name")
	var fields []string
	for _, f := range he.Fields {
		fields = append(fields, f.Field)
	}
	require.ElementsMatch(t, []string{"name", "version", "path", "size_bytes", "hashes.sha256"}, fields)
	require.Contains(t, he.Error(), "model_artifact: name: is required")
}

func TestPathRules(t *testing.T) {
	t.Parallel()
	good := []string{
		"models/resnet50.onnx", "/data/models/x.bin", "x", "s3://my-bucket/models/x.onnx",
		"gs://bucket.example/a/b", "https://example.com/x.onnx", "http://localhost:8080/a", "file:///srv/x.onnx",
	}
	for _, p := range good {
		require.Empty(t, harmonia.PathProblem(p), p)
	}
	bad := map[string]string{
		"":                   "required",
		"a/../b":             "..",
		"..":                 "..",
		"./a":                "clean",
		"a/":                 "clean",
		"a\x00b":             "NUL",
		"a\tb":               "control",
		"javascript:alert()": "not allowed",
		"s3://ab/key":        "bucket",
		"s3://bucket/":       "object key",
		"file://host/x":      "remote host",
		"file:///a/../b":     "..",
		"https://x/../../y":  "..",
	}
	for p, want := range bad {
		got := harmonia.PathProblem(p)
		require.Contains(t, got, want, "path %q", p)
	}
}

func TestValidateLicense(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"Apache-2.0", "MIT", "MIT OR Apache-2.0", "GPL-2.0-only WITH Classpath-exception-2.0", "CC-BY-4.0"} {
		require.NoError(t, (&harmonia.License{SPDXID: id}).Validate(), id)
	}
	tests := []struct {
		name string
		l    harmonia.License
		fld  string
	}{
		{"empty", harmonia.License{}, "spdx_id"},
		{"unknown id", harmonia.License{SPDXID: "Apache-3.0"}, "spdx_id"},
		{"garbage expression", harmonia.License{SPDXID: "MIT AND OR"}, "spdx_id"},
		{"bad text path", harmonia.License{SPDXID: "MIT", TextPath: "../LICENSE"}, "text_path"},
		{"long notes", harmonia.License{SPDXID: "MIT", Notes: strings.Repeat("n", 10001)}, "notes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireInvalid(t, tc.l.Validate(), harmonia.EntityLicense, tc.fld)
		})
	}
}

func TestValidateDataset(t *testing.T) {
	t.Parallel()
	d := harmonia.Dataset{Name: "coco", Version: "2024.1", Path: "s3://bucket/coco.tar", SizeBytes: 1}
	require.NoError(t, d.Validate())
	d.Path = "s3://bucket/../x"
	requireInvalid(t, d.Validate(), harmonia.EntityDataset, "path")
}

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	err := validArtifact()
	err.Name = ""
	e := err.Validate()
	require.Equal(t, harmonia.CodeInvalid, harmonia.ErrorCode(e))
	require.False(t, errors.Is(e, harmonia.ErrNotFound))
	require.Equal(t, harmonia.CodeInternal, harmonia.ErrorCode(errors.New("foreign")))
	require.Equal(t, harmonia.Code(""), harmonia.ErrorCode(nil))
}

func BenchmarkValidateArtifact(b *testing.B) {
	a := validArtifact()
	a.LicenseID = bson.NewObjectID()
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzValidateArtifact(f *testing.F) {
	f.Add("resnet50", "1.2.0", "models/resnet50.onnx", goodSHA, "vision", int64(1))
	f.Add("", "", "../x", "ZZ", "", int64(-1))
	f.Add("a\x00", "v", "s3://bucket/../k", goodSHA+"0", "Tag", int64(0))
	f.Add("n", "v", "file://host/x", "", "t", int64(5))
	f.Add("n", "v", "https://%zz", "", "t", int64(5))
	f.Fuzz(func(t *testing.T, name, version, path, sha, tag string, size int64) {
		a := &harmonia.ModelArtifact{Name: name, Version: version, Path: path, SizeBytes: size,
			Hashes: harmonia.Hashes{SHA256: sha}, Tags: []string{tag}}
		err := a.Validate()
		if err != nil {
			var he *harmonia.Error
			if !errors.As(err, &he) || he.Code != harmonia.CodeInvalid || he.Field == "" || he.Reason == "" {
				t.Fatalf("validation error is not a typed invalid error naming a field: %#v", err)
			}
		}
		if harmonia.PathProblem(path) == "" && (strings.Contains(path, "\x00") || strings.Contains("/"+path+"/", "/../")) {
			t.Fatalf("path %q accepted", path)
		}
		if harmonia.IsSHA256Hex(sha) && len(sha) != 64 {
			t.Fatalf("sha %q accepted", sha)
		}
	})
}
