package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.sample()
	r := f.ok("check")
	require.Contains(t, r.stdout, ": 0 problems, 0 repaired")

	// A member of both versions loses its marks, as a torn publish leaves
	// it.
	ctx := t.Context()
	arts := f.store.Database().Collection(harmonia.CollectionArtifacts)
	a, err := f.store.GetArtifactByKey(ctx, "bert-base", "1.0.0")
	require.NoError(t, err)
	_, err = arts.UpdateOne(ctx, bson.D{{Key: "_id", Value: a.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "published_in", Value: bson.A{}}, {Key: "published", Value: false}}}})
	require.NoError(t, err)

	r = f.fails(ExitCheckFailed, "check")
	for _, v := range []string{"2026.10.0", "2026.11.0"} {
		require.Regexp(t, `unmarked\s+model_artifact\s+bert-base@1\.0\.0\s+published_in\s+`+v+`\s+no\s+`, r.stdout)
	}
	require.Contains(t, r.stderr, "2 of 2 problems remain")

	var got checkJSON
	r = f.fails(ExitCheckFailed, "check", "--json")
	require.NoError(t, jsonUnmarshal(r.stdout, &got))
	require.False(t, got.OK)
	require.Len(t, got.Problems, 2)
	for _, p := range got.Problems {
		require.Equal(t, harmonia.ProblemUnmarked, p.Kind)
		require.Equal(t, "bert-base@1.0.0", p.Key)
		require.Equal(t, "published_in", p.Field)
	}

	got = checkJSON{}
	f.json(&got, "check", "--repair")
	require.True(t, got.OK)
	require.Equal(t, 2, got.Repaired)
	require.True(t, got.Problems[0].Repaired)
	require.True(t, got.Problems[1].Repaired)
	require.Contains(t, f.ok("check").stdout, ": 0 problems, 0 repaired")
}
