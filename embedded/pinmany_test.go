package embedded

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// An updateMany by {_id: {$in}} in a transaction, which the front runs
// pinned to each document in commands of maxWriteBatch statements,
// reports and writes what MongoDB's would, and its transaction's abort
// undoes every command of it.
func TestUpdateManyByIDsInTransaction(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{})
	ctx := t.Context() // no bound: under -race on a loaded machine this takes tens of seconds
	col := client.Database("pin").Collection("docs")
	const n = maxWriteBatch + 20
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "tags", Value: bson.A{}}, {Key: "v", Value: 0}}
	}
	_, err := col.InsertMany(ctx, docs)
	require.NoError(t, err)
	ids := bson.A{-1} // names no document
	for i := 0; i < n-10; i++ {
		ids = append(ids, i, i) // twice: still one document
	}
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}, {Key: "$addToSet", Value: bson.D{{Key: "tags", Value: "x"}}}}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}
	count := func(f bson.D) int64 {
		c, err := col.CountDocuments(ctx, f)
		require.NoError(t, err)
		return c
	}

	errRollback := errors.New("roll back")
	_, err = inTxn(ctx, client, func(ctx context.Context) (any, error) {
		res, err := col.UpdateMany(ctx, filter, update)
		require.NoError(t, err)
		require.EqualValues(t, n-10, res.MatchedCount)
		require.EqualValues(t, n-10, res.ModifiedCount)
		return nil, errRollback
	})
	require.ErrorIs(t, err, errRollback)
	require.EqualValues(t, 0, count(bson.D{{Key: "v", Value: 1}}), "the abort undid every command")

	var res *mongo.UpdateResult
	_, err = inTxn(ctx, client, func(ctx context.Context) (any, error) {
		res, err = col.UpdateMany(ctx, filter, update)
		return nil, err
	})
	require.NoError(t, err)
	require.EqualValues(t, n-10, res.MatchedCount)
	require.EqualValues(t, n-10, count(bson.D{{Key: "v", Value: 1}, {Key: "tags", Value: "x"}}))
	require.EqualValues(t, 10, count(bson.D{{Key: "v", Value: 0}}))

	// Again: matched, not modified ($addToSet and $set change nothing).
	_, err = inTxn(ctx, client, func(ctx context.Context) (any, error) {
		res, err = col.UpdateMany(ctx, filter, update)
		return nil, err
	})
	require.NoError(t, err)
	require.EqualValues(t, n-10, res.MatchedCount)
	require.EqualValues(t, 0, res.ModifiedCount)
}
