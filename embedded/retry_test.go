package embedded

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestRetryableWriteAppliesOnce: the server closes the connection after
// each write is done, as onPrimaryTransactionalWrite does, so the driver
// never sees the reply and retries with the same txnNumber; the retry
// answers the recorded result and the write applies once.
func TestRetryableWriteAppliesOnce(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{})
	ctx := ctxTimeout(t)
	coll := client.Database("retry").Collection("c")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}, {Key: "n", Value: 0}})
	require.NoError(t, err)

	namedFailPointOn(t, client, "onPrimaryTransactionalWrite", bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "closeConnection", Value: true}})
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err, "the retry answers the recorded insert, not a duplicate key error")

	namedFailPointOn(t, client, "onPrimaryTransactionalWrite", bson.D{{Key: "times", Value: 1}}, bson.D{})
	res, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "k"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, res.ModifiedCount)

	namedFailPointOn(t, client, "onPrimaryTransactionalWrite", bson.D{{Key: "times", Value: 1}}, bson.D{})
	var got struct{ N int }
	require.NoError(t, coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "k"}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 10}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&got))
	assert.Equal(t, 11, got.N, "the retried findAndModify answers the recorded document")

	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: "k"}}).Decode(&got))
	assert.Equal(t, 11, got.N, "each $inc applied once")
	assert.Len(t, all(t, coll), 2)
}

// TestRetryableWriteFailBeforeCommit: failBeforeCommitExceptionCode fails
// the write before it is committed, so it is not applied; a retriable
// code makes the driver retry, and the retry applies it once.
func TestRetryableWriteFailBeforeCommit(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{})
	ctx := ctxTimeout(t)
	coll := client.Database("retry").Collection("c")

	namedFailPointOn(t, client, "onPrimaryTransactionalWrite", bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "closeConnection", Value: false}, {Key: "failBeforeCommitExceptionCode", Value: 2}})
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	var se mongo.ServerError
	require.ErrorAs(t, err, &se)
	assert.True(t, se.HasErrorCode(2), err)
	assert.Empty(t, all(t, coll), "the failed write is not reflected")

	namedFailPointOn(t, client, "onPrimaryTransactionalWrite", bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "closeConnection", Value: false}, {Key: "failBeforeCommitExceptionCode", Value: 91}})
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
	require.NoError(t, err, "ShutdownInProgress is retryable")
	assert.Len(t, all(t, coll), 1)
}

// TestRetryableWriteTxnNumbers: on the wire, a write sent again with the
// same lsid and txnNumber answers the first reply without applying; an
// older txnNumber is TransactionTooOld (225); a newer one applies.
func TestRetryableWriteTxnNumbers(t *testing.T) {
	t.Parallel()
	srv, client := startReplSet(t, Options{})
	w := newWireClient(t, srv)
	lsid := newLsid()
	update := func(txn int64) bson.Raw {
		return w.run(bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
			bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}}, {Key: "upsert", Value: true}},
		}}, {Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: txn}, {Key: "$db", Value: "retrywire"}})
	}
	first := update(5)
	require.Equal(t, 1.0, first.Lookup("ok").Double(), first.String())
	again := update(5)
	assert.Equal(t, first.Lookup("n"), again.Lookup("n"))
	assert.Equal(t, first.Lookup("upserted"), again.Lookup("upserted"), "the retry reports the recorded upsert")
	old := update(4)
	assert.EqualValues(t, codeTransactionTooOld, i32(old.Lookup("code")), old.String())
	assert.Equal(t, "TransactionTooOld", str(old.Lookup("codeName")))
	update(6)

	var got struct{ N int }
	require.NoError(t, client.Database("retrywire").Collection("c").FindOne(ctxTimeout(t), bson.D{}).Decode(&got))
	assert.Equal(t, 2, got.N, "txnNumbers 5 and 6 applied once each")
}
