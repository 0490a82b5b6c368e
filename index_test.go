package harmonia_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

func TestForgotMigrationRefusesDuplicateProneWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := harmoniatest.Database(t)
	s, err := harmonia.Open(ctx, db, nil)
	require.NoError(t, err)

	a := validArtifact()
	err = s.CreateArtifact(ctx, a)
	require.ErrorIs(t, err, harmonia.ErrIndexesMissing)
	require.ErrorIs(t, err, harmonia.ErrInvalid)
	require.ErrorContains(t, err, "Store.EnsureIndexes")
	require.ErrorIs(t, s.CreateLicense(ctx, &harmonia.License{SPDXID: "MIT"}), harmonia.ErrIndexesMissing)
	_, err = s.Queue().Enqueue(ctx, "noop", nil, nil)
	require.ErrorIs(t, err, harmonia.ErrIndexesMissing)
	n, err := db.Collection(harmonia.CollectionArtifacts).CountDocuments(ctx, map[string]any{})
	require.NoError(t, err)
	require.Zero(t, n, "nothing written")

	require.NoError(t, s.EnsureIndexes(ctx))
	require.NoError(t, s.CreateArtifact(ctx, validArtifact()))
	require.ErrorIs(t, s.CreateArtifact(ctx, validArtifact()), harmonia.ErrConflict, "the duplicate is refused")
}

func TestForgotMigrationFindsIndexesCreatedAfterOpen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := harmoniatest.Database(t)
	early, err := harmonia.Open(ctx, db, nil)
	require.NoError(t, err)
	_, err = harmonia.Open(ctx, db, &harmonia.Options{EnsureIndexes: true})
	require.NoError(t, err)
	require.NoError(t, early.CreateArtifact(ctx, validArtifact()))
	require.ErrorIs(t, early.CreateArtifact(ctx, validArtifact()), harmonia.ErrConflict)
}

func TestEnsureIndexesOptionRefusesDuplicates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := harmonia.Open(ctx, harmoniatest.Database(t), &harmonia.Options{EnsureIndexes: true})
	require.NoError(t, err)
	require.NoError(t, s.CreateLicense(ctx, &harmonia.License{SPDXID: "MIT"}))
	require.ErrorIs(t, s.CreateLicense(ctx, &harmonia.License{SPDXID: "MIT"}), harmonia.ErrConflict)
}

func TestHarmoniatestStoreEnsuresUniqueKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := harmoniatest.Store(t, nil)
	require.NoError(t, s.CreateArtifact(ctx, validArtifact()))
	err := s.CreateArtifact(ctx, validArtifact())
	require.ErrorIs(t, err, harmonia.ErrConflict)
	page, err := s.ListArtifacts(ctx, harmonia.ArtifactFilter{})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
}

func TestEnsureIndexesIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.store.EnsureIndexes(b.ctx))
	for _, want := range harmonia.Indexes() {
		specs, err := b.db.Collection(want.Collection).Indexes().ListSpecifications(b.ctx)
		require.NoError(t, err)
		var found bool
		for _, s := range specs {
			if s.Name == want.Name {
				found = true
				require.Equal(t, want.Unique, s.Unique != nil && *s.Unique, "%s.%s", want.Collection, want.Name)
			}
		}
		require.True(t, found, "index %s.%s", want.Collection, want.Name)
	}
}

func TestValidatorsRejectBypassingWriters(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireValidators(t)
	b := setup(t)
	_, err := b.db.Collection(harmonia.CollectionArtifacts).InsertOne(b.ctx, bson.D{{Key: "name", Value: ""}, {Key: "version", Value: 1}})
	require.Error(t, err)
}

// TestEveryDocumentPassesValidators runs harmonia's flows with its
// validators installed, then checks every document it wrote against them:
// each collection's documents are copied into a collection created with
// the same validator at validationLevel strict, which the server refuses
// for any document that breaks it.
func TestEveryDocumentPassesValidators(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireValidators(t)
	b := setup(t)
	arts, dss := b.inventory(t, 3, 2)
	_, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v1", ArtifactIDs: arts[:1], PublishedBy: "x"})
	require.NoError(t, err)
	_, err = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v2", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "x", Notes: "n"})
	require.NoError(t, err)
	_, err = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v3", DatasetIDs: dss, PublishedBy: "x"})
	require.NoError(t, err)
	job, err := b.store.Queue().Enqueue(b.ctx, harmonia.JobInference, harmonia.InferenceParams{ArtifactID: arts[0]}, nil)
	require.NoError(t, err)
	_, err = b.store.Queue().Enqueue(b.ctx, harmonia.JobInference, harmonia.InferenceParams{ArtifactID: arts[1]}, nil)
	require.NoError(t, err)
	_, err = b.store.Queue().CancelJob(b.ctx, job.Job.ID)
	require.NoError(t, err)
	_, err = b.store.SetAlias(b.ctx, "production", "v1", &harmonia.SetAliasOpts{By: "x", Reason: "r"})
	require.NoError(t, err)
	_, err = b.store.SetAlias(b.ctx, "production", "v2", &harmonia.SetAliasOpts{By: "x", ExpectVersion: "v1"})
	require.NoError(t, err)
	_, err = b.store.DeleteAlias(b.ctx, "production", &harmonia.DeleteAliasOpts{By: "x"})
	require.NoError(t, err)

	for col, schema := range harmonia.Validators() {
		scratch := "check_" + col
		require.NoError(t, b.db.CreateCollection(b.ctx, scratch, options.CreateCollection().
			SetValidator(bson.D{{Key: "$jsonSchema", Value: schema}}).SetValidationLevel("strict")))
		cur, err := b.db.Collection(col).Find(b.ctx, bson.D{})
		require.NoError(t, err)
		var docs []bson.Raw
		require.NoError(t, cur.All(b.ctx, &docs))
		require.NotEmpty(t, docs, col)
		for _, d := range docs {
			_, err := b.db.Collection(scratch).InsertOne(b.ctx, d)
			require.NoError(t, err, "%s document %s breaks its validator", col, d)
		}
	}
}
