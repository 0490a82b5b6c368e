package harmonia_test

import (
	"testing"

	"github.com/stretchr/testify/require"

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
