package harmonia_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// ArtifactIDsByKey resolves any number of keys in one server command, in
// the keys' order, and names every key it cannot resolve.
func TestArtifactIDsByKey(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db)
	ids := insertArtifacts(t, b, 300)
	// Another version of an artifact whose name is asked for: found by
	// the names, left out by the versions.
	other := validArtifact()
	other.Name, other.Version = "m00007", "9.9.9"
	require.NoError(t, b.store.CreateArtifact(b.ctx, other))

	for _, k := range []int{1, 300} {
		keys := make([]harmonia.NameVersion, k)
		want := make([]bson.ObjectID, k)
		for i := range keys {
			j := (i * 7) % 300 // not in insertion order
			keys[i] = harmonia.NameVersion{Name: fmt.Sprintf("m%05d", j), Version: validArtifact().Version}
			want[i] = ids[j]
		}
		counter.Reset()
		got, err := b.store.ArtifactIDsByKey(b.ctx, keys)
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.Equal(t, 1, counter.Total(), "%d keys: %v", k, counter.Counts())
	}

	_, err := b.store.ArtifactIDsByKey(b.ctx, []harmonia.NameVersion{
		{Name: "m00001", Version: validArtifact().Version}, {Name: "nope", Version: "1"}, {Name: "m00007", Version: "1.0.1"}})
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	var he *harmonia.Error
	require.True(t, errors.As(err, &he))
	require.Len(t, he.Fields, 2)
	require.Equal(t, "2 of 3 keys match no model_artifact: nope@1, m00007@1.0.1", he.Reason)
	require.ErrorContains(t, err, "no model_artifact with key nope@1")

	_, err = b.store.ArtifactIDsByKey(b.ctx, []harmonia.NameVersion{{Name: "m00001", Version: "1"}, {Name: "m00001", Version: "1"}})
	require.ErrorIs(t, err, harmonia.ErrInvalid)
	require.ErrorContains(t, err, "given twice")
	_, err = b.store.ArtifactIDsByKey(b.ctx, []harmonia.NameVersion{{Name: "m00001"}})
	require.ErrorIs(t, err, harmonia.ErrInvalid)

	got, err := b.store.DatasetIDsByKey(b.ctx, nil)
	require.NoError(t, err)
	require.Empty(t, got)
}
