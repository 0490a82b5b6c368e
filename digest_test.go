package harmonia_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

const (
	otherSHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// goldenDigest is the hex digest of goldenManifest.
	goldenDigest = "e46920d41e3bf522f2363e2ff59d403a6daec43f110a37bd928d2be8345f09d4"
)

// goldenManifest is the fixed manifest of the golden digest test.
func goldenManifest() harmonia.Manifest {
	return harmonia.Manifest{
		Artifacts: []harmonia.ManifestItem{
			{ID: bson.NewObjectID(), Name: "resnet50", Version: "1.2.0", SHA256: goodSHA, SizeBytes: 102400, LicenseSPDXID: "Apache-2.0"},
			{ID: bson.NewObjectID(), Name: "bert", Version: "3", SHA256: otherSHA, SizeBytes: 7, LicenseSPDXID: "MIT"},
		},
		Datasets: []harmonia.ManifestItem{
			{ID: bson.NewObjectID(), Name: "imagenet-mini", Version: "2024", SHA256: otherSHA, SizeBytes: 5000, LicenseSPDXID: "CC-BY-4.0"},
		},
	}
}

// The canonical encoding and the digest of a fixed manifest are pinned:
// a change of either changes every digest ever stored. The digest below
// is `printf '%s' "$canonical" | sha256sum`.
func TestDigestGolden(t *testing.T) {
	t.Parallel()
	const canonical = `{"items":[` +
		`{"kind":"dataset","license":"CC-BY-4.0","name":"imagenet-mini","sha256":"` + otherSHA + `","size":5000,"version":"2024"},` +
		`{"kind":"model_artifact","license":"MIT","name":"bert","sha256":"` + otherSHA + `","size":7,"version":"3"},` +
		`{"kind":"model_artifact","license":"Apache-2.0","name":"resnet50","sha256":"` + goodSHA + `","size":102400,"version":"1.2.0"}` +
		`],"media_type":"application/vnd.harmonia.manifest.v1+json"}`
	b, err := harmonia.CanonicalManifest(goldenManifest())
	require.NoError(t, err)
	require.Equal(t, canonical, string(b))
	d, err := harmonia.ManifestDigest(goldenManifest())
	require.NoError(t, err)
	require.Equal(t, "sha256:"+goldenDigest, d)
}

// TestDigestChangesWithEachField: ObjectIds and the order of the items play
// no part; every content field does.
func TestDigestChangesWithEachField(t *testing.T) {
	t.Parallel()
	base := goldenManifest()
	want, err := harmonia.ManifestDigest(base)
	require.NoError(t, err)

	same := goldenManifest() // new ObjectIds
	same.Artifacts[0], same.Artifacts[1] = same.Artifacts[1], same.Artifacts[0]
	got, err := harmonia.ManifestDigest(same)
	require.NoError(t, err)
	require.Equal(t, want, got, "ids and order must not matter")

	changes := map[string]func(m *harmonia.Manifest){
		"name":    func(m *harmonia.Manifest) { m.Artifacts[0].Name = "resnet51" },
		"version": func(m *harmonia.Manifest) { m.Artifacts[0].Version = "1.2.1" },
		"sha256":  func(m *harmonia.Manifest) { m.Artifacts[0].SHA256 = otherSHA },
		"size":    func(m *harmonia.Manifest) { m.Artifacts[0].SizeBytes++ },
		"license": func(m *harmonia.Manifest) { m.Artifacts[0].LicenseSPDXID = "MIT" },
		"kind": func(m *harmonia.Manifest) {
			m.Datasets = append(m.Datasets, m.Artifacts[1])
			m.Artifacts = m.Artifacts[:1]
		},
		"dropped item": func(m *harmonia.Manifest) { m.Datasets = nil },
	}
	seen := map[string]string{want: "base"}
	for field, change := range changes {
		m := goldenManifest()
		change(&m)
		d, err := harmonia.ManifestDigest(m)
		require.NoError(t, err)
		require.NotContains(t, seen, d, "changing %s gives the digest of %s", field, seen[d])
		seen[d] = field
	}

	m := goldenManifest()
	m.Artifacts[0].SizeBytes = 1 << 53
	_, err = harmonia.ManifestDigest(m)
	require.ErrorIs(t, err, harmonia.ErrInvalid)
}

// publishGolden creates the golden manifest's artifacts and dataset in b's
// database and publishes them as tag.
func (b *bundle) publishGolden(t *testing.T, tag string) *harmonia.InventoryVersion {
	t.Helper()
	lics := map[string]*harmonia.License{}
	for _, spdx := range []string{"Apache-2.0", "MIT", "CC-BY-4.0"} {
		lics[spdx] = b.license(t, spdx)
	}
	var req harmonia.PublishRequest
	// Created in another order than the manifest lists them.
	m := goldenManifest()
	for i := len(m.Artifacts) - 1; i >= 0; i-- {
		it := m.Artifacts[i]
		a := &harmonia.ModelArtifact{Name: it.Name, Version: it.Version, Path: "m.onnx", SizeBytes: it.SizeBytes,
			Hashes: harmonia.Hashes{SHA256: it.SHA256}, LicenseID: lics[it.LicenseSPDXID].ID}
		require.NoError(t, b.store.CreateArtifact(b.ctx, a))
		req.ArtifactIDs = append(req.ArtifactIDs, a.ID)
	}
	for _, it := range m.Datasets {
		d := &harmonia.Dataset{Name: it.Name, Version: it.Version, Path: "d.tar", SizeBytes: it.SizeBytes,
			Hashes: harmonia.Hashes{SHA256: it.SHA256}, LicenseID: lics[it.LicenseSPDXID].ID}
		require.NoError(t, b.store.CreateDataset(b.ctx, d))
		req.DatasetIDs = append(req.DatasetIDs, d.ID)
	}
	req.VersionTag, req.PublishedBy = tag, "ml-platform"
	res, err := b.store.Publish(b.ctx, req)
	require.NoError(t, err)
	return res.Version
}

// TestDigestEqualAcrossDatabases: the same contents published in two
// databases (other ObjectIds, another insertion order) have the golden
// digest in both, stored with the version.
func TestDigestEqualAcrossDatabases(t *testing.T) {
	t.Parallel()
	one, two := setup(t), setup(t)
	v1 := one.publishGolden(t, "2026.11.0")
	v2 := two.publishGolden(t, "2026.11.0")
	require.NotEqual(t, v1.Manifest.Artifacts[0].ID, v2.Manifest.Artifacts[0].ID)
	require.Equal(t, "sha256:"+goldenDigest, v1.Digest)
	require.Equal(t, v1.Digest, v2.Digest)
	stored, err := two.store.GetVersionByTag(two.ctx, "2026.11.0")
	require.NoError(t, err)
	require.Equal(t, v1.Digest, stored.Digest)
}

// TestDigestIdempotentPublishAndVerifyVersion: a publish of the same tag
// is idempotent by digest; VerifyVersion finds nothing wrong until an
// artifact's stored content drifts behind harmonia's back.
func TestDigestIdempotentPublishAndVerifyVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	arts, dss := b.inventory(t, 2, 1)
	req := harmonia.PublishRequest{VersionTag: "v1", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "x"}
	res, err := b.store.Publish(b.ctx, req)
	require.NoError(t, err)
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, res.Version.Digest)
	req.ArtifactIDs = []bson.ObjectID{arts[1], arts[0]}
	again, err := b.store.Publish(b.ctx, req)
	require.NoError(t, err)
	require.False(t, again.Created)
	require.Equal(t, res.Version.Digest, again.Version.Digest)

	rep, err := b.store.VerifyVersion(b.ctx, "v1")
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep)
	require.Equal(t, res.Version.Digest, rep.CurrentDigest)

	// A writer bypassing harmonia changes a published artifact's sha256.
	_, err = b.db.Collection(harmonia.CollectionArtifacts).UpdateByID(b.ctx, arts[1],
		bson.D{{Key: "$set", Value: bson.D{{Key: "hashes.sha256", Value: otherSHA}}}})
	require.NoError(t, err)
	rep, err = b.store.VerifyVersion(b.ctx, "v1")
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.Equal(t, res.Version.Digest, rep.StoredDigest)
	require.Equal(t, rep.StoredDigest, rep.ManifestDigest)
	require.NotEqual(t, rep.StoredDigest, rep.CurrentDigest)
	require.Len(t, rep.Changed, 1)
	require.Equal(t, otherSHA, rep.Changed[0].To.SHA256)
	require.Equal(t, goodSHA, rep.Changed[0].From.SHA256)
	require.Empty(t, rep.Missing)

	_, err = b.store.VerifyVersion(b.ctx, "nope")
	require.ErrorIs(t, err, harmonia.ErrNotFound)
}
