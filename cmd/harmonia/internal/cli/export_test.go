package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia/internal/bench"
)

func TestExportRoundTrip(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.sample()
	out := t.TempDir()
	a, b := filepath.Join(out, "a.json"), filepath.Join(out, "b.json")

	var rep exportJSON
	f.json(&rep, "export", "-o", a)
	require.Equal(t, exportJSON{File: a, Licenses: 4, Datasets: 3, Artifacts: 5, Versions: 2, Bytes: rep.Bytes}, rep)
	aBytes, err := os.ReadFile(a)
	require.NoError(t, err)
	require.Equal(t, int64(len(aBytes)), rep.Bytes)

	// Without -o the file goes to standard output, the summary to stderr.
	r := f.ok("export")
	require.Equal(t, string(aBytes), r.stdout)
	require.Contains(t, r.stderr, "exported 4 licenses, 3 datasets, 5 artifacts, 2 versions")

	g := setup(t) // a new, empty database
	g.ok("import", a)
	g.ok("export", "-o", b)
	bBytes, err := os.ReadFile(b)
	require.NoError(t, err)
	require.Equal(t, string(aBytes), string(bBytes), "import(export(x)) exported again gives the same bytes")

	// One version: only what it references.
	var one exportJSON
	f.json(&one, "export", "--version", "2026.10.0", "-o", filepath.Join(out, "one.json"))
	require.Equal(t, 1, one.Versions)
	require.Equal(t, 2, one.Artifacts)
	f.fails(ExitNotFound, "export", "--version", "1999.1.0", "-o", filepath.Join(out, "none.json"))
	_, err = os.Stat(filepath.Join(out, "none.json"))
	require.ErrorIs(t, err, os.ErrNotExist, "a failed export leaves no file")
}

// TestAcceptanceRoundTripOnDataDirectories is the acceptance
// sequence, in-process: two embedded servers on new data directories.
func TestAcceptanceRoundTripOnDataDirectories(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a.json"), filepath.Join(tmp, "b.json")

	first := dataFixture(t, filepath.Join(tmp, "data1"))
	first.ok("import", sampleFile)
	first.ok("export", "-o", a)

	second := dataFixture(t, filepath.Join(tmp, "data2"))
	second.ok("import", a)
	second.ok("export", "-o", b)

	aBytes, err := os.ReadFile(a)
	require.NoError(t, err)
	bBytes, err := os.ReadFile(b)
	require.NoError(t, err)
	require.Equal(t, string(aBytes), string(bBytes))

	versions := second.versions()
	require.Len(t, versions, 2)
	require.Equal(t, "2026.11.0", versions[0].VersionTag)
	require.Equal(t, "2026.10.0", versions[1].VersionTag)
}

// A generated inventory of thousands of entries goes through several
// batches and progress lines, and round-trips too.
func TestExportRoundTripGenerated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gen, a, b := filepath.Join(dir, "gen.json"), filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	file, err := os.Create(gen)
	require.NoError(t, err)
	g, err := bench.GenerateInventory(file, bench.GenerateOptions{Artifacts: 1100, Versions: 2})
	require.NoError(t, err)
	require.NoError(t, file.Close())

	f := setup(t)
	f.ok("import", gen)
	var rep exportJSON
	f.json(&rep, "export", "-o", a)
	require.Equal(t, g.Artifacts, rep.Artifacts)
	r := f.ok("export", "-o", a)
	require.Contains(t, r.stderr, "export: artifacts: 1000 entries,", "a progress line after the first thousand")

	h := setup(t)
	h.ok("import", a)
	h.ok("export", "-o", b)
	aBytes, err := os.ReadFile(a)
	require.NoError(t, err)
	bBytes, err := os.ReadFile(b)
	require.NoError(t, err)
	require.True(t, string(aBytes) == string(bBytes), "the second export differs from the first")
}
