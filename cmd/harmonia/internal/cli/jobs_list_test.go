package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

func TestJobsList(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.sample()
	ctx := t.Context()
	ids := map[string]bson.ObjectID{}
	for _, key := range []string{"resnet50@1.3.0", "bert-base@1.0.0"} {
		name, version, err := splitKey("artifact", key)
		require.NoError(t, err)
		res, err := f.store.Queue().Enqueue(ctx, harmonia.JobValidate, &harmonia.ValidateParams{ArtifactID: mustArtifact(t, f.store, name, version)},
			&harmonia.EnqueueOpts{UniqueKey: "validate:" + key})
		require.NoError(t, err)
		ids[key] = res.Job.ID
	}
	f.ok("jobs", "cancel", ids["bert-base@1.0.0"].Hex())

	var all struct {
		Jobs []jobJSON `json:"jobs"`
	}
	f.json(&all, "jobs", "list")
	require.Len(t, all.Jobs, 2)
	require.Equal(t, ids["resnet50@1.3.0"].Hex(), all.Jobs[0].ID, "in the order enqueued")

	f.json(&all, "jobs", "list", "--status", "cancelled")
	require.Len(t, all.Jobs, 1)
	require.Equal(t, ids["bert-base@1.0.0"].Hex(), all.Jobs[0].ID)
	f.json(&all, "jobs", "list", "--status", "pending,cancelled", "--type", "validate")
	require.Len(t, all.Jobs, 2)
	f.json(&all, "jobs", "list", "--unique-key", "validate:resnet50@1.3.0")
	require.Len(t, all.Jobs, 1)
	f.json(&all, "jobs", "list", "--type", "download")
	require.Empty(t, all.Jobs)
	f.json(&all, "jobs", "list", "--limit", "1")
	require.Len(t, all.Jobs, 1)
	f.json(&all, "jobs", "list", "--before", "2000-01-01T00:00:00Z")
	require.Empty(t, all.Jobs)

	f.golden("jobs_list", f.ok("jobs", "list").stdout)
	r := f.fails(ExitInvalid, "jobs", "list", "--status", "stuck")
	require.Contains(t, r.stderr, `harmonia: job: status: unknown job status "stuck"`)
	f.fails(ExitInvalid, "jobs", "list", "--since", "yesterday")
}
