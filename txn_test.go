package harmonia_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// TestPublishTransactionTransientErrors injects a transient error
// (WriteConflict, labelled TransientTransactionError) on each command of
// the transaction path in turn: Publish still yields exactly one version,
// fully marked.
func TestPublishTransactionTransientErrors(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	for _, cmd := range []string{"find", "insert", "update"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			b, failPoint, _ := failPointStore(t)
			arts, dss := b.inventory(t, 3, 1)
			failPoint(bson.D{{Key: "times", Value: 1}}, bson.D{
				{Key: "failCommands", Value: bson.A{cmd}}, {Key: "errorCode", Value: 112},
				{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}}})
			res, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "t1", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "x"})
			require.NoError(t, err)
			assert.Equal(t, harmonia.PublishTransaction, res.Path)
			assert.True(t, res.Created)
			assert.EqualValues(t, 1, count(t, b, harmonia.CollectionVersions))
			requireConsistent(t, b)
		})
	}
}

// TestPublishTransactionCommitRetried: an UnknownTransactionCommitResult on
// commit is retried by the driver, and the version exists once.
func TestPublishTransactionCommitRetried(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	b, failPoint, counter := failPointStore(t)
	arts, _ := b.inventory(t, 2, 0)
	failPoint(bson.D{{Key: "times", Value: 2}}, bson.D{
		{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "errorCode", Value: 1}, // InternalError, with the label that makes the driver retry the commit
		{Key: "errorLabels", Value: bson.A{"UnknownTransactionCommitResult"}}})
	counter.Reset()
	res, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "c1", ArtifactIDs: arts, PublishedBy: "x"})
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.Equal(t, 3, counter.Count("commitTransaction"), "two failed commits and the one that succeeded")
	assert.EqualValues(t, 1, count(t, b, harmonia.CollectionVersions))
	requireConsistent(t, b)
}

// TestPublishTransactionNonTransientError: an error that is not transient
// on the marking write fails Publish and leaves nothing visible.
func TestPublishTransactionNonTransientError(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	b, failPoint, _ := failPointStore(t)
	arts, dss := b.inventory(t, 3, 1)
	failPoint(bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"update"}}, {Key: "errorCode", Value: 2}})
	_, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "n1", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "x"})
	require.Error(t, err)
	assert.ErrorIs(t, err, harmonia.ErrInternal)
	assert.Zero(t, count(t, b, harmonia.CollectionVersions))
	n, err := b.db.Collection(harmonia.CollectionArtifacts).CountDocuments(b.ctx, bson.D{{Key: "published", Value: true}})
	require.NoError(t, err)
	assert.Zero(t, n)
	requireConsistent(t, b)
}

// TestEveryDocumentPassesValidators runs harmonia's flows with its
// validators installed, then checks every document it wrote against them:
// each collection's documents are copied into a collection created with
// the same validator at validationLevel strict, which the server refuses
// for any document that breaks it.
func TestEveryDocumentPassesValidators(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireValidators(t)
	b := setup(t)
	arts, dss := b.inventory(t, 3, 2)
	_, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v1", ArtifactIDs: arts[:1], PublishedBy: "x"})
	require.NoError(t, err)
	_, err = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v2", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "x", Notes: "n"})
	require.NoError(t, err)
	_, err = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v3", DatasetIDs: dss, PublishedBy: "x"})
	require.NoError(t, err)
	job, err := b.store.Queue().Enqueue(b.ctx, harmonia.JobInference, harmonia.InferenceParams{ArtifactID: arts[0]}, nil)
	require.NoError(t, err)
	_, err = b.store.Queue().Enqueue(b.ctx, harmonia.JobInference, harmonia.InferenceParams{ArtifactID: arts[1]}, nil)
	require.NoError(t, err)
	_, err = b.store.Queue().CancelJob(b.ctx, job.Job.ID)
	require.NoError(t, err)
	_, err = b.store.SetAlias(b.ctx, "production", "v1", &harmonia.SetAliasOpts{By: "x", Reason: "r"})
	require.NoError(t, err)
	_, err = b.store.SetAlias(b.ctx, "production", "v2", &harmonia.SetAliasOpts{By: "x", ExpectVersion: "v1"})
	require.NoError(t, err)
	_, err = b.store.DeleteAlias(b.ctx, "production", &harmonia.DeleteAliasOpts{By: "x"})
	require.NoError(t, err)

	for col, schema := range harmonia.Validators() {
		scratch := "check_" + col
		require.NoError(t, b.db.CreateCollection(b.ctx, scratch, options.CreateCollection().
			SetValidator(bson.D{{Key: "$jsonSchema", Value: schema}}).SetValidationLevel("strict")))
		cur, err := b.db.Collection(col).Find(b.ctx, bson.D{})
		require.NoError(t, err)
		var docs []bson.Raw
		require.NoError(t, cur.All(b.ctx, &docs))
		require.NotEmpty(t, docs, col)
		for _, d := range docs {
			_, err := b.db.Collection(scratch).InsertOne(b.ctx, d)
			require.NoError(t, err, "%s document %s breaks its validator", col, d)
		}
	}
}
