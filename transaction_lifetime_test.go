package harmonia_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/embedded"
)

// A publish that the server cuts at its transaction lifetime fails once,
// saying so with its size and what to do, instead of being retried and
// cut again; nothing of it is visible.
func TestPublishCutByTransactionLifetime(t *testing.T) {
	t.Parallel()
	const lifetime = 300 * time.Millisecond
	srv, err := embedded.Start(t.Context(), embedded.Options{InMemory: true, ReplicaSet: "rs0", TransactionLifetime: lifetime})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	b := setupOn(t, client.Database("lifetime"))
	ids := insertArtifacts(t, b, 3)

	calls := 0
	harmonia.SetPublishStepHook(b.store, func(ctx context.Context, step string) error {
		calls++
		time.Sleep(3 * lifetime) // the server aborts the transaction meanwhile
		return nil
	})
	_, err = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v", ArtifactIDs: ids, PublishedBy: "x"})
	require.ErrorIs(t, err, harmonia.ErrTransactionLifetime)
	require.ErrorIs(t, err, harmonia.ErrConflict)
	require.ErrorContains(t, err, fmt.Sprintf("publish of %d artifacts and 0 datasets", len(ids)))
	require.ErrorContains(t, err, "--txn-lifetime")
	require.Equal(t, 1, calls, "not retried")
	_, err = b.store.GetVersionByTag(b.ctx, "v")
	require.ErrorIs(t, err, harmonia.ErrNotFound)
}
