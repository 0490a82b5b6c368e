package inventoryfile_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/bench"
	"github.com/harmonia-ml/harmonia/inventoryfile"
)

const samplePath = "../examples/inventory/combined_inventory.json"

func openStore(t testing.TB, db *mongo.Database) *harmonia.Store {
	t.Helper()
	s, err := harmonia.Open(context.Background(), db, nil)
	require.NoError(t, err)
	require.NoError(t, s.EnsureIndexes(context.Background()))
	return s
}

func sample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(samplePath)
	require.NoError(t, err)
	return b
}

func importBytes(t testing.TB, s *harmonia.Store, b []byte, o *inventoryfile.ImportOptions) (*inventoryfile.ImportReport, error) {
	t.Helper()
	return inventoryfile.Import(context.Background(), s, bytes.NewReader(b), o)
}

func countDocs(t *testing.T, db *mongo.Database) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, c := range []string{harmonia.CollectionLicenses, harmonia.CollectionDatasets, harmonia.CollectionArtifacts, harmonia.CollectionVersions} {
		n, err := db.Collection(c).CountDocuments(t.Context(), bson.D{})
		require.NoError(t, err)
		out[c] = n
	}
	return out
}

// The sample inventory's files exist beside it, with the sizes and
// digests it states.
func TestSampleInventoryFilesMatch(t *testing.T) {
	t.Parallel()
	var inv struct {
		Licenses []struct {
			TextPath string `json:"text_path"`
		} `json:"licenses"`
		Datasets, Artifacts []struct {
			Path      string `json:"path"`
			SizeBytes int64  `json:"size_bytes"`
			Hashes    struct {
				SHA256 string `json:"sha256"`
			} `json:"hashes"`
		}
		Versions []json.RawMessage `json:"versions"`
	}
	require.NoError(t, json.Unmarshal(sample(t), &inv))
	require.GreaterOrEqual(t, len(inv.Licenses), 3)
	require.GreaterOrEqual(t, len(inv.Datasets), 2)
	require.GreaterOrEqual(t, len(inv.Artifacts), 4)
	require.Len(t, inv.Versions, 2)
	dir := filepath.Dir(samplePath)
	for _, l := range inv.Licenses {
		require.FileExists(t, filepath.Join(dir, l.TextPath))
	}
	for _, f := range append(inv.Datasets, inv.Artifacts...) {
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		require.Equal(t, f.SizeBytes, int64(len(b)), f.Path)
		require.Equal(t, f.Hashes.SHA256, hex.EncodeToString(sum[:]), f.Path)
	}
}

// Importing the sample: a dry run writes nothing, the import writes it
// all and publishes its versions, a second import writes nothing at all
// and says every entry is unchanged.
func TestImportSampleTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	s := openStore(t, db)
	want := inventoryfile.ImportReport{
		Licenses: inventoryfile.Counts{Inserted: 4}, Datasets: inventoryfile.Counts{Inserted: 3},
		Artifacts: inventoryfile.Counts{Inserted: 5}, Versions: inventoryfile.Counts{Inserted: 2},
	}

	counter.Reset()
	rep, err := importBytes(t, s, sample(t), &inventoryfile.ImportOptions{DryRun: true})
	require.NoError(t, err)
	require.Empty(t, rep.Rejections)
	want.DryRun, want.Bytes = true, int64(len(sample(t)))
	require.Equal(t, want, *rep)
	for _, cmd := range []string{"insert", "update", "delete", "findAndModify"} {
		require.Zero(t, counter.Count(cmd), "a dry run sent %s", cmd)
	}

	rep, err = importBytes(t, s, sample(t), nil)
	require.NoError(t, err)
	want.DryRun = false
	require.Equal(t, want, *rep)
	require.Equal(t, map[string]int64{"licenses": 4, "datasets": 3, "model_artifacts": 5, "inventory_versions": 2}, countDocs(t, db))
	v, err := s.VersionContentsByTag(t.Context(), "2026.11.0")
	require.NoError(t, err)
	require.Len(t, v.Artifacts, 4)
	require.Len(t, v.Datasets, 3)
	require.Equal(t, "2026-11-01T00:00:00Z", v.Version.PublishedAt.Format("2006-01-02T15:04:05Z07:00"))
	a, err := s.GetArtifactByKey(t.Context(), "resnet50", "1.2.0")
	require.NoError(t, err)
	require.True(t, a.Published)
	require.Equal(t, "models/resnet50-1.2.0.onnx", a.Path)
	require.Equal(t, "2026-09-01T12:00:00Z", a.CreatedAt.Format("2006-01-02T15:04:05Z07:00"))
	require.Len(t, a.DatasetIDs, 1)
	require.NoError(t, a.Validate())

	counter.Reset()
	rep, err = importBytes(t, s, sample(t), nil)
	require.NoError(t, err)
	require.Equal(t, inventoryfile.ImportReport{
		Licenses: inventoryfile.Counts{Unchanged: 4}, Datasets: inventoryfile.Counts{Unchanged: 3},
		Artifacts: inventoryfile.Counts{Unchanged: 5}, Versions: inventoryfile.Counts{Unchanged: 2}, Bytes: want.Bytes,
	}, *rep)
	require.Zero(t, rep.Changed())
	for _, cmd := range []string{"insert", "update", "delete", "findAndModify"} {
		require.Zero(t, counter.Count(cmd), "the second import sent %s: %v", cmd, counter.Counts())
	}
	require.LessOrEqual(t, counter.Count("find"), 5, "one read per collection and per version: %v", counter.Counts())
}

// editSample applies edit to the decoded sample and encodes it again.
func editSample(t *testing.T, edit func(inv map[string][]map[string]any)) []byte {
	t.Helper()
	var inv map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(sample(t), &inv))
	sections := map[string][]map[string]any{}
	for _, s := range []string{"licenses", "datasets", "artifacts", "versions"} {
		var entries []map[string]any
		require.NoError(t, json.Unmarshal(inv[s], &entries))
		sections[s] = entries
	}
	edit(sections)
	out := map[string]any{"format_version": 1}
	for k, v := range sections {
		out[k] = v
	}
	b, err := json.Marshal(out)
	require.NoError(t, err)
	// Keep the sections in their order: Marshal sorts map keys.
	return reorder(t, b)
}

// reorder rewrites an inventory with its sections in the file order.
func reorder(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m))
	var buf bytes.Buffer
	buf.WriteString(`{"format_version":1`)
	for _, s := range []string{"licenses", "datasets", "artifacts", "versions"} {
		if raw, ok := m[s]; ok {
			buf.WriteString(`,"` + s + `":`)
			buf.Write(raw)
		}
	}
	buf.WriteString("}")
	return buf.Bytes()
}

func TestImportUpdatesAndProtectsPublishedContent(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	s := openStore(t, db)
	_, err := importBytes(t, s, sample(t), nil)
	require.NoError(t, err)

	changed := editSample(t, func(inv map[string][]map[string]any) {
		inv["licenses"][0]["notes"] = "reviewed by legal"
		inv["artifacts"][0]["tags"] = []string{"vision", "onnx", "imagenet"}                                                            // published: tags may change
		inv["artifacts"][1]["hashes"] = map[string]any{"sha256": strings.Repeat("ab", 32)}                                              // published: content may not
		inv["artifacts"] = append(inv["artifacts"], map[string]any{"name": "new-model", "version": "0.1.0", "path": "models/new.onnx"}) // new
	})
	rep, err := importBytes(t, s, changed, nil)
	require.NoError(t, err)
	require.Equal(t, inventoryfile.Counts{Updated: 1, Unchanged: 3}, rep.Licenses)
	require.Equal(t, inventoryfile.Counts{Inserted: 1, Updated: 1, Unchanged: 3, Rejected: 1}, rep.Artifacts)
	require.Equal(t, []inventoryfile.Rejection{{Section: "artifacts", Index: 1, Key: "resnet50@1.3.0",
		Reason: "model_artifact resnet50@1.3.0 is published in an inventory version: its path, size_bytes and hashes.sha256 cannot change"}}, rep.Rejections)
	l, err := s.GetLicenseBySPDXID(t.Context(), "Apache-2.0")
	require.NoError(t, err)
	require.Equal(t, "reviewed by legal", l.Notes)
	a, err := s.GetArtifactByKey(t.Context(), "resnet50", "1.2.0")
	require.NoError(t, err)
	require.Equal(t, []string{"vision", "onnx", "imagenet"}, a.Tags)
	require.True(t, a.Published, "an update keeps the publish marks")
	b, err := s.GetArtifactByKey(t.Context(), "resnet50", "1.3.0")
	require.NoError(t, err)
	require.NotEqual(t, strings.Repeat("ab", 32), b.Hashes.SHA256)

	// Removing an optional field unsets it.
	cleared := editSample(t, func(inv map[string][]map[string]any) { delete(inv["licenses"][3], "notes") })
	rep, err = importBytes(t, s, cleared, nil)
	require.NoError(t, err)
	require.Equal(t, 2, rep.Licenses.Updated, "Apache-2.0's notes and CC-BY-NC-4.0's notes both go")
	l, err = s.GetLicenseBySPDXID(t.Context(), "CC-BY-NC-4.0")
	require.NoError(t, err)
	require.Empty(t, l.Notes)
}

// A rejected entry does not stop the valid ones; AllOrNothing writes
// nothing when any entry is rejected, and everything otherwise, from a
// seekable reader or not.
func TestImportRejectedEntriesAndAllOrNothing(t *testing.T) {
	t.Parallel()
	bad := editSample(t, func(inv map[string][]map[string]any) {
		inv["artifacts"][2]["size_bytes"] = -1
	})
	t.Run("partial", func(t *testing.T) {
		t.Parallel()
		db := harmoniatest.Database(t)
		s := openStore(t, db)
		rep, err := importBytes(t, s, bad, nil)
		require.NoError(t, err)
		require.Equal(t, inventoryfile.Counts{Inserted: 4, Rejected: 1}, rep.Artifacts)
		require.Equal(t, []inventoryfile.Rejection{
			{Section: "artifacts", Index: 2, Key: "bert-base@1.0.0", Field: "size_bytes", Reason: "must be at least 0"},
			{Section: "versions", Index: 0, Key: "2026.10.0", Field: "artifacts[1]", Reason: "model_artifact bert-base@1.0.0 was rejected (artifacts[2])"},
			{Section: "versions", Index: 1, Key: "2026.11.0", Field: "artifacts[1]", Reason: "model_artifact bert-base@1.0.0 was rejected (artifacts[2])"},
		}, rep.Rejections)
		require.Equal(t, map[string]int64{"licenses": 4, "datasets": 3, "model_artifacts": 4, "inventory_versions": 0}, countDocs(t, db))
	})
	t.Run("all or nothing refused", func(t *testing.T) {
		t.Parallel()
		db, counter := harmoniatest.CountingDatabase(t)
		s := openStore(t, db)
		counter.Reset()
		rep, err := inventoryfile.Import(t.Context(), s, io.MultiReader(bytes.NewReader(bad)), &inventoryfile.ImportOptions{AllOrNothing: true})
		requireCode(t, err, harmonia.CodeInvalid, "all-or-nothing import refused: 3 entries rejected (first: artifacts[2] bert-base@1.0.0: size_bytes: must be at least 0)")
		require.True(t, rep.DryRun)
		require.Zero(t, counter.Count("insert"))
		require.Equal(t, map[string]int64{"licenses": 0, "datasets": 0, "model_artifacts": 0, "inventory_versions": 0}, countDocs(t, db))
	})
	for name, r := range map[string]func() io.Reader{
		"seeker":     func() io.Reader { return bytes.NewReader(sample(t)) },
		"non-seeker": func() io.Reader { return io.MultiReader(bytes.NewReader(sample(t))) },
	} {
		t.Run("all or nothing "+name, func(t *testing.T) {
			t.Parallel()
			db := harmoniatest.Database(t)
			s := openStore(t, db)
			var passes []string
			rep, err := inventoryfile.Import(t.Context(), s, r(), &inventoryfile.ImportOptions{AllOrNothing: true,
				Progress: func(p inventoryfile.ImportProgress) { passes = append(passes, p.Pass+" "+p.Section) }})
			require.NoError(t, err)
			require.False(t, rep.DryRun)
			require.Equal(t, 14, rep.Changed())
			require.Equal(t, []string{"check licenses", "check datasets", "check artifacts", "check versions",
				"import licenses", "import datasets", "import artifacts", "import versions"}, passes)
			require.Equal(t, map[string]int64{"licenses": 4, "datasets": 3, "model_artifacts": 5, "inventory_versions": 2}, countDocs(t, db))
		})
	}
}

func TestImportBaseDirAndBatches(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	s := openStore(t, db)
	var file bytes.Buffer
	g, err := bench.GenerateInventory(&file, bench.GenerateOptions{Artifacts: 40, Versions: 1})
	require.NoError(t, err)
	require.Equal(t, &bench.Generated{Licenses: 3, Datasets: 4, Artifacts: 40, Versions: 1, Bytes: int64(file.Len())}, g)

	counter.Reset()
	var progress []inventoryfile.ImportProgress
	rep, err := importBytes(t, s, file.Bytes(), &inventoryfile.ImportOptions{BaseDir: "/srv/inventory", BatchSize: 7,
		Progress: func(p inventoryfile.ImportProgress) { progress = append(progress, p) }})
	require.NoError(t, err)
	require.Equal(t, inventoryfile.Counts{Inserted: 40}, rep.Artifacts)
	require.Equal(t, inventoryfile.Counts{Inserted: 1}, rep.Versions)
	require.Equal(t, 6, counter.Count("insert")-3, "40 artifacts in batches of 7: 6 InsertMany (and one each for licenses, datasets, the version)")
	var artifactProgress []int
	for _, p := range progress {
		if p.Section == "artifacts" {
			artifactProgress = append(artifactProgress, p.Entries)
		}
	}
	require.Equal(t, []int{7, 14, 21, 28, 35, 40}, artifactProgress)

	a, err := s.GetArtifactByKey(t.Context(), "model-0000003", "1.0.0")
	require.NoError(t, err)
	require.Equal(t, "/srv/inventory/models/model-0000003.onnx", a.Path, "relative paths are joined to BaseDir")
	d, err := s.GetDatasetByKey(t.Context(), "dataset-1", "2026.1")
	require.NoError(t, err)
	require.Equal(t, "s3://harmonia-data/dataset-1.tar", d.Path, "URIs are kept")
	l, err := s.GetLicenseBySPDXID(t.Context(), "MIT")
	require.NoError(t, err)
	require.Equal(t, "/srv/inventory/licenses/MIT.txt", l.TextPath)

	counter.Reset()
	rep, err = importBytes(t, s, file.Bytes(), &inventoryfile.ImportOptions{BaseDir: "/srv/inventory", BatchSize: 7})
	require.NoError(t, err)
	require.Zero(t, rep.Changed())
	require.Equal(t, 40, rep.Artifacts.Unchanged)
	require.Zero(t, counter.Count("insert")+counter.Count("update"))

	rep, err = importBytes(t, s, file.Bytes(), &inventoryfile.ImportOptions{BaseDir: "/elsewhere", DryRun: true})
	require.NoError(t, err)
	require.Equal(t, inventoryfile.Counts{Updated: 3}, rep.Licenses, "another BaseDir changes the license paths")
	require.Equal(t, inventoryfile.Counts{Unchanged: 4}, rep.Datasets, "URIs stay")
	require.Equal(t, inventoryfile.Counts{Rejected: 40}, rep.Artifacts, "published artifacts cannot move")
	require.Equal(t, inventoryfile.Counts{Unchanged: 1}, rep.Versions, "the version still names the stored artifacts")
}
