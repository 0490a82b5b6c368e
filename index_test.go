package harmonia_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

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
