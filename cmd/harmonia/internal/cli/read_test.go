package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

func TestHelpListsEveryCommandAndExitCodes(t *testing.T) {
	t.Parallel()
	r := execute(t, t.Context(), "--help")
	require.Equal(t, ExitOK, r.code)
	for _, name := range []string{"migrate", "import", "export", "publish", "versions", "artifacts", "verify", "jobs", "worker", "devdb", "alias"} {
		require.Regexp(t, `(?m)^  `+name+` `, r.stdout, "harmonia --help lists %s", name)
	}
	require.Contains(t, r.stdout, exitCodesHelp)

	// Every command's help is complete on its own.
	a := &app{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		require.NotEmpty(t, c.Short, "%s: Short", c.CommandPath())
		require.NotEmpty(t, c.Long, "%s: Long", c.CommandPath())
		require.NotEmpty(t, c.Example, "%s: Example", c.CommandPath())
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(a.rootCommand())
}

func TestReadCommandsGolden(t *testing.T) {
	t.Parallel()
	f := setup(t)
	file := f.sample()
	f.golden("import_again", f.ok("import", file).stdout)
	f.golden("versions_list", f.ok("versions", "list").stdout)
	f.golden("versions_show", f.ok("versions", "show", "2026.11.0").stdout)
	f.golden("versions_diff", f.ok("versions", "diff", "2026.10.0", "2026.11.0").stdout)
	f.golden("artifacts_list", f.ok("artifacts", "list").stdout)
	f.golden("artifacts_list_filtered", f.ok("artifacts", "list", "--tag", "onnx", "--license", "apache-2.0", "--name-prefix", "res").stdout)
}

func TestReadCommandsJSON(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.sample()

	versions := f.versions()
	require.Len(t, versions, 2)
	require.Equal(t, "2026.11.0", versions[0].VersionTag)
	require.Equal(t, "2026.10.0", versions[1].VersionTag)
	require.Equal(t, 4, versions[0].Artifacts)
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, versions[0].Digest)

	var show versionJSON
	f.json(&show, "versions", "show", "2026.11.0")
	require.Equal(t, versions[0].Digest, show.Digest, "versions show prints the version's digest")
	v, err := f.store.GetVersionByTag(t.Context(), "2026.11.0")
	require.NoError(t, err)
	require.Equal(t, v.Digest, show.Digest)
	require.Len(t, show.Artifacts, 4)
	require.Len(t, show.Datasets, 3)
	require.Equal(t, "models/resnet50-1.3.0.onnx", show.Artifacts[0].Path)

	var diff diffJSON
	f.json(&diff, "versions", "diff", "2026.10.0", "2026.11.0")
	require.Len(t, diff.Added, 3)
	kinds := map[string]string{}
	for _, it := range diff.Added {
		kinds[it.Name] = it.Kind
	}
	require.Equal(t, map[string]string{"yolo-tiny": "artifact", "distilbert-qa": "artifact", "imagenet-mini": "dataset"}, kinds)
	require.Empty(t, diff.Removed)
	require.Len(t, diff.Changed, 1)
	require.Equal(t, "1.2.0", diff.Changed[0].From.Version)
	require.Equal(t, "1.3.0", diff.Changed[0].To.Version)

	var arts struct {
		Artifacts []artifactJSON `json:"artifacts"`
	}
	names := func(args ...string) []string {
		f.json(&arts, append([]string{"artifacts", "list"}, args...)...)
		var out []string
		for _, a := range arts.Artifacts {
			out = append(out, a.Name+"@"+a.Version)
		}
		return out
	}
	require.Len(t, names(), 5)
	require.Equal(t, []string{"bert-base@1.0.0", "distilbert-qa@2.1.0"}, names("--tag", "nlp"))
	require.Equal(t, []string{"yolo-tiny@0.9.0", "distilbert-qa@2.1.0"}, names("--license", "MIT"))
	require.Equal(t, []string{"resnet50@1.2.0", "resnet50@1.3.0"}, names("--name-prefix", "res"))
	require.Equal(t, []string{"yolo-tiny@0.9.0"}, names("--tag", "vision", "--tag", "detection"))
	require.Equal(t, []string{"resnet50@1.2.0"}, names("--limit", "1"))

	var imp importJSON
	f.json(&imp, "import", "--dry-run", f.dir+"/combined_inventory.json")
	require.True(t, imp.DryRun)
	require.Equal(t, 0, imp.Changed)
	require.Equal(t, countsJSON{Unchanged: 5}, imp.Artifacts)
	require.Empty(t, imp.Rejections)
}

func TestImportRejectsBadEntryNamingEntryAndField(t *testing.T) {
	t.Parallel()
	f := setup(t)
	dir := t.TempDir()
	bad := `{"format_version": 1,
  "licenses": [{"spdx_id": "MIT", "text_path": "licenses/MIT.txt", "commercial_use": true, "notes": ""}],
  "artifacts": [
    {"name": "good", "version": "1.0.0", "path": "models/good.onnx", "size_bytes": 1,
     "hashes": {"sha256": "` + strings.Repeat("a", 64) + `"}, "license": "MIT"},
    {"name": "bad", "version": "1.0.0", "path": "models/bad.onnx", "size_bytes": 1,
     "hashes": {"sha256": "not-hex"}, "license": "MIT"}
  ]}`
	file := dir + "/bad.json"
	writeFile(t, file, bad)

	r := f.fails(ExitInvalid, "import", "--all-or-nothing", file)
	require.Empty(t, r.stdout, "no report of a refused import")
	require.Contains(t, r.stderr, "artifacts[1] bad@1.0.0: hashes.sha256:")
	_, err := f.store.GetArtifactByKey(t.Context(), "good", "1.0.0")
	require.Error(t, err, "all-or-nothing wrote nothing")

	var imp importJSON
	r = f.fails(ExitInvalid, "import", "--json", file)
	require.NoError(t, jsonUnmarshal(r.stdout, &imp))
	require.Equal(t, 1, imp.Artifacts.Inserted)
	require.Equal(t, []rejectionJSON{{Section: "artifacts", Index: 1, Key: "bad@1.0.0", Field: "hashes.sha256", Reason: imp.Rejections[0].Reason}}, imp.Rejections)
	require.Contains(t, r.stderr, "harmonia: inventory_file: hashes.sha256: 1 entry rejected, 2 other entries changed; the first: artifacts[1] bad@1.0.0")
}
