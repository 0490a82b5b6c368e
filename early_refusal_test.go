package harmonia_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

func TestEnqueueRefusesJobsForMissingArtifacts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gone := bson.NewObjectID()
	for _, params := range []any{harmonia.ValidateParams{ArtifactID: gone}, &harmonia.ValidateParams{ArtifactID: gone},
		harmonia.InferenceParams{ArtifactID: gone}} {
		_, err := b.store.Queue().Enqueue(b.ctx, harmonia.JobValidate, params, nil)
		requireInvalid(t, err, harmonia.EntityJob, "params.artifact_id")
		require.ErrorContains(t, err, gone.Hex())
	}
	require.Zero(t, count(t, b, harmonia.CollectionJobs), "nothing enqueued")
	a := b.artifact(t, "resnet50", nil)
	_, err := b.store.Queue().Enqueue(b.ctx, harmonia.JobValidate, harmonia.ValidateParams{ArtifactID: a.ID}, nil)
	require.NoError(t, err)
}

func TestOpenRefusesDatabaseNamesTheServerRefuses(t *testing.T) {
	t.Parallel()
	client := harmoniatest.Database(t).Client()
	for _, name := range []string{"my.db", "a b", "a/b", `a"b`, "a$b", "a*b", "a:b", "a?b", "a\x00b", strings.Repeat("x", 64)} {
		_, err := harmonia.Open(t.Context(), client.Database(name), nil)
		requireInvalid(t, err, "store", "db")
	}
	require.Empty(t, harmonia.DatabaseNameProblem("inventory_prod-1"))
	require.Equal(t, `must not contain '.'`, harmonia.DatabaseNameProblem("my.db"))
}

func TestTagFiltersIgnoreLetterCase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.artifact(t, "resnet50", nil, "vision", "onnx")
	for _, f := range []harmonia.ArtifactFilter{{TagsAny: []string{"Vision"}}, {TagsAll: []string{"VISION", "Onnx"}}} {
		page, err := b.store.ListArtifacts(b.ctx, f)
		require.NoError(t, err)
		require.Len(t, page.Items, 1, "%+v", f)
		require.Equal(t, a.ID, page.Items[0].ID)
	}
}

func TestListLimitOutsideItsRangeIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, limit := range []int{-1, harmonia.ListLimitMax + 1, 5000} {
		_, err := b.store.ListArtifacts(b.ctx, harmonia.ArtifactFilter{Limit: limit})
		requireInvalid(t, err, harmonia.EntityArtifact, "limit")
		_, err = b.store.ListLicenses(b.ctx, harmonia.LicenseFilter{Limit: limit})
		requireInvalid(t, err, harmonia.EntityLicense, "limit")
		_, err = b.store.ListVersions(b.ctx, harmonia.VersionFilter{Limit: limit})
		requireInvalid(t, err, harmonia.EntityVersion, "limit")
	}
	_, err := b.store.ListArtifacts(b.ctx, harmonia.ArtifactFilter{Limit: harmonia.ListLimitMax})
	require.NoError(t, err)
}
