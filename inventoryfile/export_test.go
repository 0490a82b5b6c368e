package inventoryfile_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/bench"
	"github.com/harmonia-ml/harmonia/inventoryfile"
)

// exportBytes exports s (with o) and returns the file.
func exportBytes(t testing.TB, s *harmonia.Store, o *inventoryfile.ExportOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	rep, err := inventoryfile.Export(context.Background(), s, &buf, o)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), rep.Bytes)
	return buf.Bytes()
}

// importedStore returns a store over a new database into which file was
// imported without a rejection.
func importedStore(t testing.TB, file []byte) *harmonia.Store {
	t.Helper()
	s := openStore(t, harmoniatest.Database(t))
	rep, err := importBytes(t, s, file, nil)
	require.NoError(t, err)
	require.Zero(t, rep.Rejected(), "%v", rep.Rejections)
	return s
}

// Importing an export into an empty database and exporting again gives
// the same bytes; the export holds everything the sample did.
func TestExportRoundTripSample(t *testing.T) {
	t.Parallel()
	s1 := importedStore(t, sample(t))
	var progress []inventoryfile.ExportProgress
	var buf bytes.Buffer
	rep, err := inventoryfile.Export(t.Context(), s1, &buf, &inventoryfile.ExportOptions{Progress: func(p inventoryfile.ExportProgress) { progress = append(progress, p) }})
	require.NoError(t, err)
	a := buf.Bytes()
	require.Equal(t, inventoryfile.ExportReport{Licenses: 4, Datasets: 3, Artifacts: 5, Versions: 2, Bytes: int64(len(a))}, *rep)
	require.Len(t, progress, 4, "one call at the end of each section")
	require.Equal(t, inventoryfile.SectionVersions, progress[3].Section)
	require.Equal(t, int64(len(a)-len("\n}\n")), progress[3].Bytes, "all but the closing brace")

	s2 := importedStore(t, a)
	b := exportBytes(t, s2, nil)
	require.Equal(t, string(a), string(b))

	// The export says the same as the sample, entry by entry.
	require.JSONEq(t, string(canonicalSample(t)), string(a))
}

// canonicalSample returns the sample in the export's order and without
// its empty optional fields.
func canonicalSample(t *testing.T) []byte {
	return editSample(t, func(inv map[string][]map[string]any) {
		for _, entries := range inv {
			for _, e := range entries {
				for k, v := range e {
					if v == "" {
						delete(e, k)
					}
				}
			}
		}
		by := func(fields ...string) func(a, b map[string]any) int {
			return func(a, b map[string]any) int {
				for _, f := range fields {
					if c := strings.Compare(a[f].(string), b[f].(string)); c != 0 {
						return c
					}
				}
				return 0
			}
		}
		slices.SortFunc(inv["licenses"], by("spdx_id"))
		slices.SortFunc(inv["datasets"], by("name", "version"))
		slices.SortFunc(inv["artifacts"], by("name", "version"))
		slices.SortFunc(inv["versions"], by("published_at", "version_tag"))
		for _, v := range inv["versions"] {
			for _, k := range []string{"artifacts", "datasets"} {
				refs := v[k].([]any)
				slices.SortFunc(refs, func(a, b any) int { return bytes.Compare([]byte(a.(string)), []byte(b.(string))) })
			}
		}
	})
}

// The same data written in another order, into another database, exports
// to the same bytes; a change of one field changes them.
func TestExportIsCanonical(t *testing.T) {
	t.Parallel()
	want := exportBytes(t, importedStore(t, sample(t)), nil)
	shuffled := editSample(t, func(inv map[string][]map[string]any) {
		for _, k := range []string{"licenses", "datasets", "artifacts"} {
			slices.Reverse(inv[k])
		}
		// Artifacts must still come after the datasets they name, which
		// they do: sections keep their order.
		for _, a := range inv["artifacts"] {
			if ds, ok := a["datasets"].([]any); ok {
				slices.Reverse(ds)
			}
		}
		for _, v := range inv["versions"] {
			slices.Reverse(v["artifacts"].([]any))
		}
	})
	require.Equal(t, string(want), string(exportBytes(t, importedStore(t, shuffled), nil)))

	edited := editSample(t, func(inv map[string][]map[string]any) { inv["artifacts"][0]["notes"] = "changed" })
	require.NotEqual(t, string(want), string(exportBytes(t, importedStore(t, edited), nil)))
}

// Digests are equal across an export and an import into another
// database, version by version.
func TestDigestEqualAcrossExportImport(t *testing.T) {
	t.Parallel()
	s1 := importedStore(t, sample(t))
	s2 := importedStore(t, exportBytes(t, s1, nil))
	for _, tag := range []string{"2026.10.0", "2026.11.0"} {
		v1, err := s1.GetVersionByTag(t.Context(), tag)
		require.NoError(t, err)
		v2, err := s2.GetVersionByTag(t.Context(), tag)
		require.NoError(t, err)
		require.NotEqual(t, v1.ID, v2.ID)
		require.Regexp(t, `^sha256:[0-9a-f]{64}$`, v1.Digest)
		require.Equal(t, v1.Digest, v2.Digest, tag)
		vr, err := s2.VerifyVersion(t.Context(), tag)
		require.NoError(t, err)
		require.True(t, vr.OK(), "%+v", vr)
	}
}

// Exporting one version writes it and what it needs, and nothing else;
// that file imports into an empty database with the same digest.
func TestExportVersion(t *testing.T) {
	t.Parallel()
	s1 := importedStore(t, sample(t))
	all := exportBytes(t, s1, nil)
	var buf bytes.Buffer
	rep, err := inventoryfile.Export(t.Context(), s1, &buf, &inventoryfile.ExportOptions{Version: "2026.10.0"})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Versions)
	v1, err := s1.GetVersionByTag(t.Context(), "2026.10.0")
	require.NoError(t, err)
	require.Equal(t, len(v1.ArtifactIDs), rep.Artifacts)
	require.Less(t, buf.Len(), len(all))

	s2 := importedStore(t, buf.Bytes())
	v2, err := s2.GetVersionByTag(t.Context(), "2026.10.0")
	require.NoError(t, err)
	require.Equal(t, v1.Digest, v2.Digest)
	_, err = s2.GetVersionByTag(t.Context(), "2026.11.0")
	require.Equal(t, harmonia.CodeNotFound, harmonia.ErrorCode(err))
	require.Equal(t, buf.String(), string(exportBytes(t, s2, nil)), "the version's file round-trips too")

	_, err = inventoryfile.Export(t.Context(), s1, &bytes.Buffer{}, &inventoryfile.ExportOptions{Version: "1999.1"})
	requireCode(t, err, harmonia.CodeNotFound, "1999.1")
}

// A generated inventory of thousands of entries round-trips too.
func TestExportRoundTripGenerated(t *testing.T) {
	t.Parallel()
	var gen bytes.Buffer
	g, err := bench.GenerateInventory(&gen, bench.GenerateOptions{Artifacts: 2000, Versions: 3})
	require.NoError(t, err)
	s1 := importedStore(t, gen.Bytes())
	a := exportBytes(t, s1, nil)
	var calls int
	rep, err := inventoryfile.Export(t.Context(), s1, &bytes.Buffer{}, &inventoryfile.ExportOptions{Progress: func(inventoryfile.ExportProgress) { calls++ }})
	require.NoError(t, err)
	require.Equal(t, g.Artifacts, rep.Artifacts)
	require.Equal(t, 4+g.Artifacts/inventoryfile.ExportProgressEvery, calls)
	b := exportBytes(t, importedStore(t, a), nil)
	require.True(t, bytes.Equal(a, b), "second export differs from the first")
}

// With BaseDir, local paths inside it are written relative to it: an
// import with a BaseDir and an export with the same one give back the
// file's own paths.
func TestExportBaseDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, harmoniatest.Database(t))
	rep, err := importBytes(t, s, sample(t), &inventoryfile.ImportOptions{BaseDir: dir})
	require.NoError(t, err)
	require.Zero(t, rep.Rejected())
	a, err := s.GetArtifactByKey(t.Context(), "resnet50", "1.2.0")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "models", "resnet50-1.2.0.onnx"), a.Path)

	withBase := exportBytes(t, s, &inventoryfile.ExportOptions{BaseDir: dir})
	require.Equal(t, string(exportBytes(t, importedStore(t, sample(t)), nil)), string(withBase))
	require.Contains(t, string(exportBytes(t, s, nil)), filepath.ToSlash(dir), "without BaseDir the stored paths are written")
}

var update = flag.Bool("update", false, "rewrite the golden files")

type failingWriter struct{ after int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errDiskFull
	}
	w.after--
	return len(p), nil
}

// A writer's error stops the export and comes back wrapped.
func TestExportWriterError(t *testing.T) {
	t.Parallel()
	s := importedStore(t, sample(t))
	_, err := inventoryfile.Export(t.Context(), s, &failingWriter{}, nil)
	requireCode(t, err, harmonia.CodeInternal, "disk full")
	require.ErrorIs(t, err, errDiskFull)
}

// An empty database exports a file with empty sections, which imports.
func TestExportEmpty(t *testing.T) {
	t.Parallel()
	s := openStore(t, harmoniatest.Database(t))
	b := exportBytes(t, s, nil)
	require.Equal(t, "{\n  \"format_version\": 1,\n  \"licenses\": [],\n  \"datasets\": [],\n  \"artifacts\": [],\n  \"versions\": []\n}\n", string(b))
	importedStore(t, b)
}

// The sample file, exported, is what examples/inventory ships: keep them
// in step (run with -update to rewrite testdata/sample-export.json).
func TestExportSampleGolden(t *testing.T) {
	t.Parallel()
	got := exportBytes(t, importedStore(t, sample(t)), nil)
	golden := filepath.Join("testdata", "sample-export.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}
