package embedded

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// bulkTimeout bounds each bulk-write test, so that a regression (FerretDB
// deadlocking on a long update command) fails the test instead of hanging
// the run. 200 updates (twice the ~100 statements that deadlocked) take
// about 1 s, and about 8 s with -race.
const bulkTimeout = 2 * time.Minute

// bulkSetup starts a server and fills a collection with n documents whose
// _id is 0..n-1.
func bulkSetup(t *testing.T, n int) (context.Context, *mongo.Collection) {
	t.Helper()
	srv := startServer(t, Options{InMemory: true})
	ctx, cancel := context.WithTimeout(t.Context(), bulkTimeout)
	t.Cleanup(cancel)
	coll := connect(t, srv.URI(), options.Client().SetTimeout(bulkTimeout)).Database("bulk").Collection("docs")
	if n == 0 {
		return ctx, coll
	}
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "v", Value: 0}}
	}
	_, err := coll.InsertMany(ctx, docs)
	require.NoError(t, err)
	return ctx, coll
}

// One update command with ~100 statements or more deadlocks FerretDB
// v1.24.2; the front caps maxWriteBatchSize so the driver splits the bulk
// write into short commands.
func TestEmbeddedBulkUpdateOne(t *testing.T) {
	const n = 200
	ctx, coll := bulkSetup(t, n)

	models := make([]mongo.WriteModel, n)
	for i := range models {
		models[i] = mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: i}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: i + 1}}}})
	}
	start := time.Now()
	res, err := coll.BulkWrite(ctx, models)
	require.NoError(t, err)
	t.Logf("BulkWrite of %d UpdateOne: %v", n, time.Since(start))
	assert.EqualValues(t, n, res.MatchedCount)
	assert.EqualValues(t, n, res.ModifiedCount)

	cur, err := coll.Find(ctx, bson.D{})
	require.NoError(t, err)
	var docs []struct {
		ID int `bson:"_id"`
		V  int `bson:"v"`
	}
	require.NoError(t, cur.All(ctx, &docs))
	require.Len(t, docs, n)
	for _, d := range docs {
		assert.Equal(t, d.ID+1, d.V, "document %d", d.ID)
	}
}

func TestEmbeddedBulkDeleteOne(t *testing.T) {
	const n = 500
	ctx, coll := bulkSetup(t, n)

	models := make([]mongo.WriteModel, n)
	for i := range models {
		models[i] = mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: i}})
	}
	start := time.Now()
	res, err := coll.BulkWrite(ctx, models)
	require.NoError(t, err)
	t.Logf("BulkWrite of %d DeleteOne: %v", n, time.Since(start))
	assert.EqualValues(t, n, res.DeletedCount)

	left, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Zero(t, left)
}

// An unordered bulk insert that the driver splits into several commands
// still reports every duplicate, at its index in the whole bulk write.
func TestEmbeddedBulkInsertDuplicates(t *testing.T) {
	const n = 300
	ctx, coll := bulkSetup(t, 0)

	// Every tenth model repeats the _id of the model before it.
	models := make([]mongo.WriteModel, n)
	var wantDup []int
	id := 0
	for i := range models {
		if i%10 == 9 {
			wantDup = append(wantDup, i)
		} else {
			id++
		}
		models[i] = mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: id}, {Key: "i", Value: i}})
	}
	start := time.Now()
	res, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	t.Logf("unordered BulkWrite of %d InsertOne with %d duplicates: %v", n, len(wantDup), time.Since(start))

	var bwe mongo.BulkWriteException
	require.True(t, errors.As(err, &bwe), "want a BulkWriteException, got %v", err)
	require.NotNil(t, res)
	assert.EqualValues(t, n-len(wantDup), res.InsertedCount)
	assert.Nil(t, bwe.WriteConcernError)
	var gotDup []int
	for _, we := range bwe.WriteErrors {
		assert.True(t, mongo.IsDuplicateKeyError(we), "write error %d: %v", we.Index, we)
		gotDup = append(gotDup, we.Index)
	}
	sort.Ints(gotDup)
	assert.Equal(t, wantDup, gotDup, "indexes of the duplicate-key errors")

	count, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, n-len(wantDup), count)
}

// Through the real server, every way of asking hello gets the capped
// maxWriteBatchSize: the driver's commands, and a legacy OP_QUERY, which
// drivers use for their first hello and FerretDB answers with an OP_REPLY.
func TestEmbeddedHelloMaxWriteBatchSize(t *testing.T) {
	srv := startServer(t, Options{InMemory: true})
	ctx := ctxTimeout(t)
	db := connect(t, srv.URI()).Database("admin")
	for _, name := range []string{"hello", "isMaster", "ismaster"} {
		var reply struct {
			MaxWriteBatchSize int `bson:"maxWriteBatchSize"`
		}
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: name, Value: 1}}).Decode(&reply), name)
		assert.Equal(t, maxWriteBatch, reply.MaxWriteBatchSize, name)
	}

	conn := rawConn(t, srv)
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := conn.Write(opQuery(11, "admin.$cmd", marshal(t, bson.D{{Key: "isMaster", Value: 1}, {Key: "helloOk", Value: true}})))
	require.NoError(t, err)
	rep, err := readMessage(conn)
	require.NoError(t, err)
	require.Equal(t, int32(opCodeReply), opCode(rep))
	var reply struct {
		OK                float64 `bson:"ok"`
		MaxWriteBatchSize int     `bson:"maxWriteBatchSize"`
	}
	require.NoError(t, bson.Unmarshal(rep[replyDocsOffset:], &reply))
	assert.Equal(t, 1.0, reply.OK)
	assert.Equal(t, maxWriteBatch, reply.MaxWriteBatchSize)
}
