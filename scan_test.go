package harmonia_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// TestAllIterators: the All* iterators yield every document in key order
// across scan batches, only the given ids when ids is set, stop when the
// loop breaks, and yield the context's error as an error.
func TestAllIterators(t *testing.T) {
	t.Parallel()
	b := setup(t)
	arts, dss := b.inventory(t, harmonia.ScanBatchSize+3, 2)

	var names []string
	for a, err := range b.store.AllArtifacts(b.ctx, nil) {
		require.NoError(t, err)
		names = append(names, a.Name)
	}
	require.Len(t, names, len(arts), "every artifact, across batches")
	require.IsIncreasing(t, names, "in natural-key order (all share a version)")

	some := []bson.ObjectID{arts[7], arts[3], bson.NewObjectID()}
	var got []bson.ObjectID
	for a, err := range b.store.AllArtifacts(b.ctx, some) {
		require.NoError(t, err)
		got = append(got, a.ID)
	}
	require.ElementsMatch(t, some[:2], got, "only the ids given; an unknown id is left out")

	n := 0
	for range b.store.AllArtifacts(b.ctx, nil) {
		n++
		if n == 2 {
			break
		}
	}
	require.Equal(t, 2, n, "a break stops the scan")

	var ds, ls int
	for _, err := range b.store.AllDatasets(b.ctx, nil) {
		require.NoError(t, err)
		ds++
	}
	for _, err := range b.store.AllLicenses(b.ctx, nil) {
		require.NoError(t, err)
		ls++
	}
	require.Equal(t, len(dss), ds)
	require.Equal(t, 1, ls)

	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	var errs int
	for a, err := range b.store.AllArtifacts(ctx, nil) {
		require.Nil(t, a)
		require.True(t, errors.Is(err, context.Canceled), "got %v", err)
		errs++
	}
	require.Equal(t, 1, errs, "the error ends the sequence")
}
