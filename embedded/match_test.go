package embedded

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func rawDoc(t *testing.T, d bson.D) bsoncore.Document {
	t.Helper()
	b, err := bson.Marshal(d)
	require.NoError(t, err)
	return b
}

// matchScalars decides the conditions it knows as MongoDB does, and
// leaves the others to the server.
func TestMatchScalars(t *testing.T) {
	t.Parallel()
	id := bson.NewObjectID()
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	doc := rawDoc(t, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: "running"}, {Key: "n", Value: int32(3)},
		{Key: "big", Value: int64(1 << 60)}, {Key: "ok", Value: true}, {Key: "at", Value: at}, {Key: "ref", Value: id},
		{Key: "tags", Value: bson.A{"a"}}, {Key: "sub", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "none", Value: nil}})
	const unknown = "unknown"
	for _, c := range []struct {
		q    bson.D
		want any // true, false or unknown
	}{
		{bson.D{{Key: "status", Value: "running"}}, true},
		{bson.D{{Key: "status", Value: "pending"}}, false},
		{bson.D{{Key: "status", Value: bson.D{{Key: "$eq", Value: "running"}}}}, true},
		{bson.D{{Key: "n", Value: 3.0}}, true},
		{bson.D{{Key: "n", Value: int64(3)}}, true},
		{bson.D{{Key: "n", Value: bson.D{{Key: "$gt", Value: 2}, {Key: "$lte", Value: 3}}}}, true},
		{bson.D{{Key: "n", Value: bson.D{{Key: "$lt", Value: 3}}}}, false},
		{bson.D{{Key: "n", Value: bson.D{{Key: "$gte", Value: 4}}}}, false},
		{bson.D{{Key: "ok", Value: true}}, true},
		{bson.D{{Key: "ok", Value: false}}, false},
		{bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: at.Add(time.Millisecond)}}}}, true},
		{bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: at}}}}, false},
		{bson.D{{Key: "ref", Value: id}}, true},
		{bson.D{{Key: "ref", Value: bson.NewObjectID()}}, false},
		{bson.D{{Key: "missing", Value: bson.D{{Key: "$exists", Value: false}}}}, true},
		{bson.D{{Key: "status", Value: bson.D{{Key: "$exists", Value: false}}}}, false},
		{bson.D{{Key: "status", Value: bson.D{{Key: "$exists", Value: true}}}}, true},
		{bson.D{{Key: "missing", Value: "x"}}, false},
		{bson.D{{Key: "missing", Value: bson.D{{Key: "$lt", Value: at}}}}, false},
		{bson.D{{Key: "status", Value: "running"}, {Key: "n", Value: 4}}, false},
		// Beyond it: left to the server.
		{bson.D{{Key: "status", Value: 1}}, unknown},                                              // another kind
		{bson.D{{Key: "tags", Value: "a"}}, unknown},                                              // array field
		{bson.D{{Key: "sub", Value: bson.D{{Key: "x", Value: 1}}}}, unknown},                      // embedded document
		{bson.D{{Key: "sub.x", Value: 1}}, unknown},                                               // dotted path
		{bson.D{{Key: "none", Value: nil}}, unknown},                                              // null
		{bson.D{{Key: "big", Value: int64(1 << 60)}}, unknown},                                    // beyond float64's integers
		{bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{"running"}}}}}, unknown}, // other operator
		{bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "n", Value: 3}}}}}, unknown},
		{bson.D{{Key: "status", Value: bson.D{{Key: "$exists", Value: 1}}}}, unknown},
	} {
		q := rawDoc(t, append(bson.D{{Key: "_id", Value: id}}, c.q...))
		match, known := matchScalars(doc, q)
		got := any(match)
		if !known {
			got = unknown
		}
		require.Equal(t, c.want, got, "%v", c.q)
	}
}

// Writes whose filter pins _id and adds conditions give the same results
// as before on both topologies, transactions included: matched, not
// matched, a missing document, an upsert, conditions left to the server.
func TestPinnedWrites(t *testing.T) {
	t.Parallel()
	for _, replSet := range []string{"", "rs0"} {
		srv := startServer(t, Options{InMemory: true, ReplicaSet: replSet})
		col := connect(t, srv.URI()).Database("pin").Collection("jobs")
		ctx := t.Context()
		ids := make([]bson.ObjectID, 3)
		docs := make([]any, len(ids))
		for i := range ids {
			ids[i] = bson.NewObjectID()
			docs[i] = bson.D{{Key: "_id", Value: ids[i]}, {Key: "status", Value: "pending"}, {Key: "tags", Value: bson.A{"x"}}}
		}
		_, err := col.InsertMany(ctx, docs)
		require.NoError(t, err)

		set := func(v string) bson.D { return bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: v}}}} }
		res, err := col.UpdateOne(ctx, bson.D{{Key: "_id", Value: ids[0]}, {Key: "status", Value: "pending"}, {Key: "lease", Value: bson.D{{Key: "$exists", Value: false}}}}, set("running"))
		require.NoError(t, err)
		require.Equal(t, [2]int64{1, 1}, [2]int64{res.MatchedCount, res.ModifiedCount}, replSet)
		res, err = col.UpdateOne(ctx, bson.D{{Key: "_id", Value: ids[0]}, {Key: "status", Value: "pending"}}, set("again"))
		require.NoError(t, err)
		require.Zero(t, res.MatchedCount, "no longer pending")
		res, err = col.UpdateOne(ctx, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "status", Value: "pending"}}, set("x"))
		require.NoError(t, err)
		require.Zero(t, res.MatchedCount, "no such document")
		res, err = col.UpdateOne(ctx, bson.D{{Key: "_id", Value: ids[1]}, {Key: "tags", Value: "x"}}, set("by-array"))
		require.NoError(t, err)
		require.Equal(t, int64(1), res.MatchedCount, "an array condition, left to the server")

		// Several statements in one command, unordered: each its own.
		bw, err := col.BulkWrite(ctx, []mongo.WriteModel{
			mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: ids[2]}, {Key: "status", Value: "pending"}}).SetUpdate(set("running")),
			mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: ids[0]}, {Key: "status", Value: "pending"}}).SetUpdate(set("stolen")),
			mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: ids[1]}, {Key: "status", Value: "pending"}}),
		}, options.BulkWrite().SetOrdered(false))
		require.NoError(t, err)
		require.Equal(t, int64(1), bw.MatchedCount)
		require.Zero(t, bw.DeletedCount, "ids[1] is by-array, not pending")

		// An upsert takes the server's path and inserts.
		newID := bson.NewObjectID()
		res, err = col.UpdateOne(ctx, bson.D{{Key: "_id", Value: newID}, {Key: "status", Value: "pending"}}, set("new"), options.UpdateOne().SetUpsert(true))
		require.NoError(t, err)
		require.Equal(t, newID, res.UpsertedID)

		var got []bson.M
		cur, err := col.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		require.NoError(t, err)
		require.NoError(t, cur.All(ctx, &got))
		statuses := make([]any, len(got))
		for i, d := range got {
			statuses[i] = d["status"]
		}
		require.Equal(t, []any{"running", "by-array", "running", "new"}, statuses, replSet)
	}
}
