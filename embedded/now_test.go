package embedded

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// serverNow is the clock of the servers these tests start: far from the
// machine's, so that a $$NOW read from any other clock shows.
var serverNow = time.Date(2031, 3, 4, 5, 6, 7, 891_000_000, time.UTC)

// nowColl returns a fresh collection on a server whose clock stands at
// serverNow, with documents 1 (t an hour before it), 2 (an hour after),
// 3 (no t) and 4 (t not a date).
func nowColl(t *testing.T, replSet string) *mongo.Collection {
	t.Helper()
	srv := startServer(t, Options{InMemory: true, ReplicaSet: replSet, Now: func() time.Time { return serverNow }})
	coll := connect(t, srv.URI()).Database("now").Collection("c")
	_, err := coll.InsertMany(ctxTimeout(t), []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "t", Value: serverNow.Add(-time.Hour)}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: 2}, {Key: "t", Value: serverNow.Add(time.Hour)}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: 3}, {Key: "n", Value: 1}},
		bson.D{{Key: "_id", Value: 4}, {Key: "t", Value: "soon"}, {Key: "n", Value: 1}},
	})
	require.NoError(t, err)
	return coll
}

func ids(t *testing.T, ctx context.Context, coll *mongo.Collection, filter any) []int32 {
	t.Helper()
	cur, err := coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	require.NoError(t, err)
	var docs []struct {
		ID int32 `bson:"_id"`
	}
	require.NoError(t, cur.All(ctx, &docs))
	out := []int32{}
	for _, d := range docs {
		out = append(out, d.ID)
	}
	return out
}

func nowExpr(op string, args ...any) bson.D {
	return bson.D{{Key: "$expr", Value: bson.D{{Key: op, Value: bson.A(args)}}}}
}

// $expr comparisons of a field with $$NOW read the server's clock, in
// every command that takes a filter.
func TestNowInFilters(t *testing.T) {
	t.Parallel()
	coll := nowColl(t, "")
	ctx := ctxTimeout(t)

	require.Equal(t, []int32{1}, ids(t, ctx, coll, nowExpr("$lt", "$t", "$$NOW")))
	require.Equal(t, []int32{1}, ids(t, ctx, coll, nowExpr("$gt", "$$NOW", "$t")), "operands swapped")
	require.Equal(t, []int32{2}, ids(t, ctx, coll, nowExpr("$gte", "$t", "$$NOW")))
	require.Equal(t, []int32{}, ids(t, ctx, coll, nowExpr("$eq", "$t", "$$NOW")))
	// Under $or, next to another condition on the same field.
	or := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "_id", Value: 3}},
		append(nowExpr("$lt", "$t", "$$NOW"), bson.E{Key: "t", Value: bson.D{{Key: "$gt", Value: serverNow.Add(-2 * time.Hour)}}}),
	}}}
	require.Equal(t, []int32{1, 3}, ids(t, ctx, coll, or))

	n, err := coll.CountDocuments(ctx, nowExpr("$gt", "$t", "$$NOW"))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	res, err := coll.UpdateMany(ctx, nowExpr("$lt", "$t", "$$NOW"), bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
	require.NoError(t, err)
	require.EqualValues(t, 1, res.MatchedCount)
	require.Equal(t, []int32{1}, ids(t, ctx, coll, bson.D{{Key: "n", Value: 2}}))

	var got bson.M
	require.NoError(t, coll.FindOneAndUpdate(ctx, nowExpr("$gt", "$t", "$$NOW"), bson.D{{Key: "$set", Value: bson.D{{Key: "late", Value: true}}}}).Decode(&got))
	require.EqualValues(t, 2, got["_id"])

	del, err := coll.DeleteMany(ctx, nowExpr("$lt", "$t", "$$NOW"))
	require.NoError(t, err)
	require.EqualValues(t, 1, del.DeletedCount)
	require.Equal(t, []int32{2, 3, 4}, ids(t, ctx, coll, bson.D{}))
}

// An update pipeline in the forms the front evaluates does what MongoDB
// does with it, on the standalone server and in a transaction.
func TestNowUpdatePipeline(t *testing.T) {
	t.Parallel()
	for _, replSet := range []string{"", "rs0"} {
		coll := nowColl(t, replSet)
		ctx := ctxTimeout(t)
		pipeline := mongo.Pipeline{
			{{Key: "$set", Value: bson.D{
				{Key: "name", Value: bson.D{{Key: "$literal", Value: "$not-a-path"}}},
				{Key: "plain", Value: "x"},
				{Key: "n", Value: bson.D{{Key: "$add", Value: bson.A{bson.D{{Key: "$ifNull", Value: bson.A{"$n", 0}}}, 2}}}},
				{Key: "fresh", Value: bson.D{{Key: "$add", Value: bson.A{bson.D{{Key: "$ifNull", Value: bson.A{"$fresh", 0}}}, int64(5)}}}},
				{Key: "log", Value: bson.D{{Key: "$concatArrays", Value: bson.A{
					bson.D{{Key: "$ifNull", Value: bson.A{"$log", bson.A{}}}},
					bson.A{bson.D{{Key: "$literal", Value: bson.D{{Key: "k", Value: "$v"}}}}, "two"},
				}}}},
				{Key: "at", Value: "$$NOW"},
			}}},
			{{Key: "$addFields", Value: bson.D{{Key: "expires", Value: bson.D{{Key: "$add", Value: bson.A{"$$NOW", 1500}}}}}}},
			{{Key: "$unset", Value: bson.A{"t"}}},
		}
		run := func(ctx context.Context) error {
			if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, pipeline); err != nil {
				return err
			}
			var before bson.M
			if err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 2}}, mongo.Pipeline{
				{{Key: "$set", Value: bson.D{{Key: "expires", Value: bson.D{{Key: "$add", Value: bson.A{"$$NOW", 2000.0}}}}}}},
			}).Decode(&before); err != nil {
				return err
			}
			if _, ok := before["expires"]; ok {
				return errors.New("findAndModify returned the document after the update")
			}
			return nil
		}
		if replSet == "" {
			require.NoError(t, run(ctx))
		} else {
			sess, err := coll.Database().Client().StartSession()
			require.NoError(t, err)
			_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) { return nil, run(ctx) })
			sess.EndSession(ctx)
			require.NoError(t, err)
		}
		var one bson.M
		require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&one))
		require.Equal(t, "$not-a-path", one["name"])
		require.Equal(t, "x", one["plain"])
		require.EqualValues(t, 3, one["n"])
		require.EqualValues(t, 5, one["fresh"])
		require.Equal(t, bson.A{bson.D{{Key: "k", Value: "$v"}}, "two"}, one["log"])
		require.Equal(t, bson.NewDateTimeFromTime(serverNow), one["at"])
		require.Equal(t, bson.NewDateTimeFromTime(serverNow.Add(1500*time.Millisecond)), one["expires"])
		require.NotContains(t, one, "t")
		var two bson.M
		require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 2}}).Decode(&two))
		require.Equal(t, bson.NewDateTimeFromTime(serverNow.Add(2*time.Second)), two["expires"], "replSet=%q", replSet)
	}
}

// What the front does not evaluate is refused with NotImplemented and
// changes nothing.
func TestNowRefusesOtherForms(t *testing.T) {
	t.Parallel()
	coll := nowColl(t, "")
	ctx := ctxTimeout(t)
	set := func(field string, v any) mongo.Pipeline {
		return mongo.Pipeline{{{Key: "$set", Value: bson.D{{Key: field, Value: v}}}}}
	}
	for name, update := range map[string]any{
		"another stage":        mongo.Pipeline{{{Key: "$project", Value: bson.D{{Key: "n", Value: 1}}}}},
		"a sum of two fields":  set("n", bson.D{{Key: "$add", Value: bson.A{"$n", "$n"}}}),
		"an $inc of another":   set("m", bson.D{{Key: "$add", Value: bson.A{bson.D{{Key: "$ifNull", Value: bson.A{"$n", 0}}}, 1}}}),
		"a field path":         set("m", "$n"),
		"an expression object": set("m", bson.D{{Key: "a", Value: 1}}),
		"a field touched twice": mongo.Pipeline{
			{{Key: "$set", Value: bson.D{{Key: "n", Value: 5}}}},
			{{Key: "$unset", Value: "n"}},
		},
	} {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, update)
		var ce mongo.ServerError
		require.ErrorAs(t, err, &ce, name)
		require.True(t, ce.HasErrorCode(int(codeNotImplemented)), "%s: %v", name, err)
	}
	_, err := coll.Find(ctx, bson.D{{Key: "$expr", Value: bson.D{{Key: "$lt", Value: bson.A{bson.D{{Key: "$add", Value: bson.A{"$t", 1}}}, "$$NOW"}}}}})
	var ce mongo.ServerError
	require.ErrorAs(t, err, &ce)
	require.True(t, ce.HasErrorCode(int(codeNotImplemented)), "%v", err)

	// MongoDB refuses $expr in an upsert's filter; so does the front.
	expired := nowExpr("$lt", "$t", "$$NOW")
	_, err = coll.UpdateOne(ctx, append(bson.D{{Key: "_id", Value: 9}}, expired...), bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 2}}}},
		options.UpdateOne().SetUpsert(true))
	require.ErrorAs(t, err, &ce)
	require.True(t, ce.HasErrorCode(int(codeQueryFeatureNotAllowed)), "%v", err)
	err = coll.FindOneAndUpdate(ctx, bson.D{{Key: "$or", Value: bson.A{expired}}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 2}}}},
		options.FindOneAndUpdate().SetUpsert(true)).Err()
	require.ErrorAs(t, err, &ce)
	require.True(t, ce.HasErrorCode(int(codeQueryFeatureNotAllowed)), "%v", err)

	var one bson.M
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&one))
	require.Equal(t, bson.M{"_id": int32(1), "t": bson.NewDateTimeFromTime(serverNow.Add(-time.Hour)), "n": int32(1)}, one)
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.EqualValues(t, 4, n, "nothing upserted")
}

// A refused pipeline in a transaction aborts it, as a failed command does
// on MongoDB: its earlier writes are undone and commit fails.
func TestNowRefusalAbortsTransaction(t *testing.T) {
	t.Parallel()
	coll := nowColl(t, "rs0")
	ctx := ctxTimeout(t)
	sess, err := coll.Database().Client().StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)
	_, err = coll.UpdateOne(sctx, bson.D{{Key: "_id", Value: 1}}, mongo.Pipeline{{{Key: "$set", Value: bson.D{{Key: "n", Value: 7}}}}})
	require.NoError(t, err)
	_, err = coll.UpdateOne(sctx, bson.D{{Key: "_id", Value: 2}}, mongo.Pipeline{{{Key: "$project", Value: bson.D{{Key: "n", Value: 1}}}}})
	var ce mongo.ServerError
	require.ErrorAs(t, err, &ce)
	require.True(t, ce.HasErrorCode(int(codeNotImplemented)), "%v", err)
	require.Error(t, sess.CommitTransaction(ctx), "the transaction was aborted")

	var one bson.M
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&one))
	require.EqualValues(t, 1, one["n"], "the transaction's first write was undone")
}

// FuzzRewriteNow rewrites arbitrary commands: it must never panic, and
// what it sends on is a valid document.
func FuzzRewriteNow(f *testing.F) {
	seed := func(name string, d bson.D) {
		b, err := bson.Marshal(d)
		require.NoError(f, err)
		f.Add(name, b)
	}
	now := bson.A{"$t", "$$NOW"}
	seed("find", bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "$expr", Value: bson.D{{Key: "$lt", Value: now}}}}, bson.D{{Key: "t", Value: 1}}}}}}})
	seed("update", bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{
		{Key: "q", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$gte", Value: now}}}}},
		{Key: "u", Value: bson.A{
			bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$add", Value: bson.A{"$$NOW", 5}}}},
				{Key: "l", Value: bson.D{{Key: "$concatArrays", Value: bson.A{bson.D{{Key: "$ifNull", Value: bson.A{"$l", bson.A{}}}}, bson.A{1}}}}}}}},
			bson.D{{Key: "$unset", Value: bson.A{"b"}}},
		}},
	}}}})
	seed("findAndModify", bson.D{{Key: "findAndModify", Value: "c"}, {Key: "query", Value: bson.D{}},
		{Key: "update", Value: bson.A{bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: bson.D{{Key: "$add", Value: bson.A{bson.D{{Key: "$ifNull", Value: bson.A{"$n", 0}}}, 1.5}}}}}}}}}})
	seed("aggregate", bson.D{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$eq", Value: bson.A{"$$NOW", "$$NOW"}}}}}}}}}})
	fr := &front{cfg: frontConfig{now: func() time.Time { return serverNow }}}
	f.Fuzz(func(t *testing.T, name string, doc []byte) {
		if bson.Raw(doc).Validate() != nil {
			return
		}
		cmd := &command{name: name, doc: doc, raw: doc}
		if cerr := fr.rewriteNow(cmd); cerr != nil {
			require.NotEmpty(t, cerr.msg)
			return
		}
		require.NoError(t, bson.Raw(cmd.doc).Validate())
	})
}
