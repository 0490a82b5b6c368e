package cli

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWideNamesAndPlurals: tables line up by display width with names in
// CJK scripts and with combining accents, counts of one are singular, and
// a name in NFD or another letter case finds the stored entry.
func TestWideNamesAndPlurals(t *testing.T) {
	t.Parallel()
	f := setup(t)
	dir := t.TempDir()
	const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	file := filepath.Join(dir, "wide.json")
	writeFile(t, file, `{"format_version": 1,
  "licenses": [{"spdx_id": "MIT", "commercial_use": true}],
  "artifacts": [
    {"name": "画像分類モデル", "version": "1.0", "path": "a.onnx", "size_bytes": 4, "hashes": {"sha256": "`+sha+`"}, "license": "MIT", "tags": ["vision"]},
    {"name": "cafe\u0301", "version": "2.0", "path": "b.onnx", "size_bytes": 4, "hashes": {"sha256": "`+sha+`"}, "license": "MIT", "tags": ["nlp"]},
    {"name": "resnet50", "version": "1.0", "path": "c.onnx", "size_bytes": 4, "hashes": {"sha256": "`+sha+`"}, "license": "MIT"}
  ]}`)
	r := f.ok("import", file)
	require.Contains(t, r.stdout, "4 entries changed")
	f.golden("wide_names_list", f.ok("artifacts", "list").stdout)

	r = f.ok("publish", "2026.12.0", "--artifact", "CAFÉ@2.0", "--by", "me")
	require.Contains(t, r.stdout, "2026.12.0 published (1 artifact, 0 datasets,")
	// The publish path depends on the lane (transaction or staged).
	f.golden("plural_publish", regexp.MustCompile(`, (transaction|staged)\)`).ReplaceAllString(r.stdout, ", PATH)"))
	r = f.ok("publish", "2026.12.0", "--artifact", "café@2.0", "--by", "me")
	require.Contains(t, r.stdout, "already published", "NFC, NFD and either case are one artifact")
	f.golden("wide_versions_show", f.ok("versions", "show", "2026.12.0").stdout)
}

// TestTableAlignsByDisplayWidth checks the table writer itself: every
// column starts at the same display column in every row.
func TestTableAlignsByDisplayWidth(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	a := &app{stdout: &out}
	tb := a.newTable("NAME", "VERSION")
	tb.row("画像分類", "1")
	tb.row("cafe\u0301", "2")
	tb.row("x", "")
	require.NoError(t, tb.flush())
	require.Equal(t, "NAME      VERSION\n画像分類  1\ncafe\u0301      2\nx         -\n", out.String())
	require.Equal(t, "1 entry", plural(1, "entry"))
	require.Equal(t, "2 entries", plural(2, "entry"))
	require.Equal(t, "0 artifacts", plural(0, "artifact"))
}
