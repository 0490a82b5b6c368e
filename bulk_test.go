package harmonia_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// The bulk operations keep the single-entity rules, item by item:
// validation, references, unique keys, stamps, and published content.
func TestBulkInsertAndReplaceKeepTheRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lic := b.license(t, "MIT")
	history := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	good := validArtifact()
	good.LicenseID, good.CreatedAt, good.Published = lic.ID, history, true
	ghostLicense := validArtifact()
	ghostLicense.Name, ghostLicense.LicenseID = "ghost-license", bson.NewObjectID()
	ghostDataset := validArtifact()
	ghostDataset.Name, ghostDataset.DatasetIDs = "ghost-dataset", []bson.ObjectID{bson.NewObjectID()}
	bad := validArtifact()
	bad.Name, bad.Path = "bad", "../x"
	dup := validArtifact()
	dup.Path = "models/other.onnx"
	errs, err := b.store.Bulk().InsertArtifacts(b.ctx, []*harmonia.ModelArtifact{good, ghostLicense, ghostDataset, bad, dup})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	requireInvalid(t, errs[1], harmonia.EntityArtifact, "license_id")
	requireInvalid(t, errs[2], harmonia.EntityArtifact, "dataset_ids")
	requireInvalid(t, errs[3], harmonia.EntityArtifact, "path")
	require.ErrorIs(t, errs[4], harmonia.ErrConflict)
	require.EqualValues(t, 1, count(t, b, harmonia.CollectionArtifacts))

	got, err := b.store.GetArtifact(b.ctx, good.ID)
	require.NoError(t, err)
	require.Equal(t, harmonia.SchemaVersion, got.SchemaVersion)
	require.Equal(t, history, got.CreatedAt, "a given creation time is kept")
	require.Equal(t, b.clock.Now().UTC().Truncate(time.Millisecond), got.UpdatedAt)
	require.False(t, got.Published, "inserts are never published")

	_, err = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v1", ArtifactIDs: []bson.ObjectID{good.ID}, PublishedBy: "x"})
	require.NoError(t, err)
	retagged, moved, missing := *got, *got, *got
	retagged.Tags, retagged.Notes = []string{"vision"}, ""
	moved.Path = "models/moved.onnx"
	missing.ID = bson.NewObjectID()
	errs, err = b.store.Bulk().ReplaceArtifacts(b.ctx, []*harmonia.ModelArtifact{&retagged})
	require.NoError(t, err)
	require.NoError(t, errs[0], "the free fields of a published artifact may change")
	errs, err = b.store.Bulk().ReplaceArtifacts(b.ctx, []*harmonia.ModelArtifact{&moved, &missing})
	require.NoError(t, err)
	require.ErrorIs(t, errs[0], harmonia.ErrPublishedContent)
	require.ErrorIs(t, errs[0], harmonia.ErrConflict)
	require.ErrorIs(t, errs[1], harmonia.ErrNotFound)

	got, err = b.store.GetArtifact(b.ctx, good.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"vision"}, got.Tags)
	require.Equal(t, good.Path, got.Path)
	require.True(t, got.Published)

	var seen []string
	for a, err := range b.store.AllArtifacts(b.ctx, nil) {
		require.NoError(t, err)
		seen = append(seen, a.Key())
	}
	require.Equal(t, []string{good.Key()}, seen)
}

// GetVersion reads by id, GetVersionByTag by natural key; both see only
// published versions.
func TestGetVersionByIDAndTag(t *testing.T) {
	t.Parallel()
	b := setup(t)
	arts, _ := b.inventory(t, 1, 0)
	res, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v1", ArtifactIDs: arts, PublishedBy: "x"})
	require.NoError(t, err)
	byID, err := b.store.GetVersion(b.ctx, res.Version.ID)
	require.NoError(t, err)
	byTag, err := b.store.GetVersionByTag(b.ctx, "v1")
	require.NoError(t, err)
	require.Equal(t, byID, byTag)
	require.True(t, byTag.HasContents(arts, nil))
	_, err = b.store.GetVersion(b.ctx, bson.NewObjectID())
	require.ErrorIs(t, err, harmonia.ErrNotFound)
}
