package harmonia_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// composeUnit is what a service does in one unit: create an artifact,
// publish it and write an audit record of its own.
func composeUnit(b *bundle, lic *harmonia.License, tag string, fail error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		a := validArtifact()
		a.Name, a.LicenseID = "composed-"+tag, lic.ID
		if err := b.store.CreateArtifact(ctx, a); err != nil {
			return err
		}
		res, err := b.store.Publish(ctx, harmonia.PublishRequest{VersionTag: tag, ArtifactIDs: []bson.ObjectID{a.ID}, PublishedBy: "svc"})
		if err != nil {
			return err
		}
		if _, err := b.db.Collection("audit").InsertOne(ctx, bson.D{{Key: "version", Value: res.Version.ID}, {Key: "tag", Value: tag}}); err != nil {
			return err
		}
		return fail
	}
}

func TestComposeCommitAndAbort(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	b := setup(t)
	lic := b.license(t, "MIT")

	errAbort := errors.New("the service changed its mind")
	err := b.store.InTransaction(b.ctx, composeUnit(b, lic, "aborted", errAbort))
	require.ErrorIs(t, err, errAbort)
	assert.Zero(t, count(t, b, harmonia.CollectionVersions), "abort: no version")
	assert.EqualValues(t, 0, count(t, b, harmonia.CollectionArtifacts), "abort: no artifact")
	assert.Zero(t, count(t, b, "audit"), "abort: no audit record")

	require.NoError(t, b.store.InTransaction(b.ctx, composeUnit(b, lic, "committed", nil)))
	assert.EqualValues(t, 1, count(t, b, harmonia.CollectionVersions))
	assert.EqualValues(t, 1, count(t, b, harmonia.CollectionArtifacts))
	assert.EqualValues(t, 1, count(t, b, "audit"))
	v, err := b.store.GetVersionByTag(b.ctx, "committed")
	require.NoError(t, err)
	assert.Len(t, v.ArtifactIDs, 1)
	requireConsistent(t, b)
}

// TestComposeCallersOwnTransaction: Publish joins a transaction the caller
// started with the plain driver, and nothing is visible before the commit.
func TestComposeCallersOwnTransaction(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	b := setup(t)
	arts, _ := b.inventory(t, 2, 0)
	sess, err := b.db.Client().StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(b.ctx, sess)
	res, err := b.store.Publish(sctx, harmonia.PublishRequest{VersionTag: "own", ArtifactIDs: arts, PublishedBy: "svc"})
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.Equal(t, harmonia.PublishTransaction, res.Path)
	// Inside the transaction the version is there; the same tag again is idempotent.
	again, err := b.store.Publish(sctx, harmonia.PublishRequest{VersionTag: "own", ArtifactIDs: arts, PublishedBy: "svc"})
	require.NoError(t, err)
	assert.False(t, again.Created)
	require.NoError(t, sess.CommitTransaction(b.ctx))
	assert.EqualValues(t, 1, count(t, b, harmonia.CollectionVersions))
	requireConsistent(t, b)
}

// TestComposeTransientRetry: a transient error injected on the caller's own
// write makes the whole unit run again, and exactly one version results.
func TestComposeTransientRetry(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	b, failPoint, _ := failPointStore(t)
	lic := b.license(t, "MIT")
	var runs int
	unit := composeUnit(b, lic, "retried", nil)
	failPoint(bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 112},
		{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}}})
	err := b.store.InTransaction(b.ctx, func(ctx context.Context) error {
		runs++
		return unit(ctx)
	})
	require.NoError(t, err)
	assert.Equal(t, 2, runs, "the unit ran again after the transient error")
	assert.EqualValues(t, 1, count(t, b, harmonia.CollectionVersions))
	assert.EqualValues(t, 1, count(t, b, "audit"))
	requireConsistent(t, b)
}

// TestComposePublishOpensNoSession: every command of a Publish inside the
// caller's transaction carries the caller's session.
func TestComposePublishOpensNoSession(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	var mu sync.Mutex
	var lsids []string
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if id, err := e.Command.LookupErr("lsid", "id"); err == nil {
			mu.Lock()
			lsids = append(lsids, id.String())
			mu.Unlock()
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(harmoniatest.CurrentLane(t).URI).SetMonitor(monitor))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	b := setupOn(t, client.Database(harmoniatest.Database(t).Name()))
	arts, _ := b.inventory(t, 3, 0)

	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	mu.Lock()
	lsids = nil
	mu.Unlock()
	_, err = sess.WithTransaction(b.ctx, func(ctx context.Context) (any, error) {
		return b.store.Publish(ctx, harmonia.PublishRequest{VersionTag: "one-session", ArtifactIDs: arts, PublishedBy: "svc"})
	})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, lsids)
	want, err := sess.ID().LookupErr("id")
	require.NoError(t, err)
	for i, id := range lsids {
		assert.Equal(t, want.String(), id, "command %d ran in another session", i)
	}
}

func TestInTransactionNested(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	b := setup(t)
	lic := b.license(t, "MIT")
	errOuter := errors.New("outer fails after the inner unit")
	err := b.store.InTransaction(b.ctx, func(ctx context.Context) error {
		if err := b.store.InTransaction(ctx, composeUnit(b, lic, "inner", nil)); err != nil {
			return err
		}
		return errOuter
	})
	require.ErrorIs(t, err, errOuter)
	assert.Zero(t, count(t, b, harmonia.CollectionVersions), "the inner unit joined the outer one and was aborted with it")
}

// TestInTransactionStandalone: without transactions the unit is refused
// with ErrNoTransactions and nothing is written; Publish refuses to join a
// caller's transaction the same way.
func TestInTransactionStandalone(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireStandalone(t)
	b := setup(t)
	lic := b.license(t, "MIT")
	ran := false
	err := b.store.InTransaction(b.ctx, func(ctx context.Context) error {
		ran = true
		return composeUnit(b, lic, "standalone", nil)(ctx)
	})
	require.ErrorIs(t, err, harmonia.ErrNoTransactions)
	require.ErrorIs(t, err, harmonia.ErrInvalid)
	assert.False(t, ran)
	assert.Zero(t, count(t, b, harmonia.CollectionVersions))
	assert.Zero(t, count(t, b, harmonia.CollectionArtifacts))
	assert.Zero(t, count(t, b, "audit"))
	require.ErrorIs(t, b.store.InTransaction(b.ctx, nil), harmonia.ErrInvalid)

	// A caller that starts a transaction itself: Publish refuses to join.
	arts, _ := b.inventory(t, 1, 0)
	sess, err := b.db.Client().StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	_, err = b.store.Publish(mongo.NewSessionContext(b.ctx, sess), harmonia.PublishRequest{VersionTag: "joined", ArtifactIDs: arts, PublishedBy: "svc"})
	require.ErrorIs(t, err, harmonia.ErrNoTransactions)
	assert.Zero(t, count(t, b, harmonia.CollectionVersions))
}
