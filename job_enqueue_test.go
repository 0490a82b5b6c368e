package harmonia_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
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
