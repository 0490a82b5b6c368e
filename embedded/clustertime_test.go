package embedded

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func timestampOf(t *testing.T, rep bson.Raw, path ...string) bson.Timestamp {
	t.Helper()
	ts, i, ok := rep.Lookup(path...).TimestampOK()
	require.True(t, ok, "%v in %s", path, rep)
	return bson.Timestamp{T: ts, I: i}
}

// TestClusterTimeOnReplies: in the replica-set mode every reply, errors
// included, carries operationTime and $clusterTime with the signature a
// mongod without authentication sends; a write advances it, and the
// standalone server sends neither.
func TestClusterTimeOnReplies(t *testing.T) {
	t.Parallel()
	srv, _ := startReplSet(t, Options{})
	w := newWireClient(t, srv)
	ping := w.run(bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	t0 := timestampOf(t, ping, "operationTime")
	assert.Equal(t, t0, timestampOf(t, ping, "$clusterTime", "clusterTime"))
	sub, data := ping.Lookup("$clusterTime", "signature", "hash").Binary()
	assert.Equal(t, byte(0), sub)
	assert.Equal(t, make([]byte, 20), data)
	assert.EqualValues(t, 0, i64(ping.Lookup("$clusterTime", "signature", "keyId")))

	ins := w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "x", Value: 1}}}}, {Key: "$db", Value: "ct"}})
	t1 := timestampOf(t, ins, "operationTime")
	assert.True(t, t1.After(t0), "%v after %v", t1, t0)
	bad := w.run(bson.D{{Key: "find", Value: 1.5}, {Key: "$db", Value: "ct"}})
	require.Equal(t, 0.0, bad.Lookup("ok").Double(), bad.String())
	assert.False(t, timestampOf(t, bad, "operationTime").Before(t1), "an error reply carries the time too")

	// A client's gossiped $clusterTime moves the clock forward.
	later := bson.Timestamp{T: t1.T + 100, I: 7}
	rep := w.run(bson.D{{Key: "ping", Value: 1}, {Key: "$clusterTime", Value: bson.D{
		{Key: "clusterTime", Value: later}, {Key: "signature", Value: bson.D{
			{Key: "hash", Value: bson.Binary{Data: make([]byte, 20)}}, {Key: "keyId", Value: int64(0)}}}}},
		{Key: "$db", Value: "admin"}})
	assert.Equal(t, later, timestampOf(t, rep, "$clusterTime", "clusterTime"))

	standalone := startServer(t, Options{InMemory: true})
	rep = newWireClient(t, standalone).run(bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	assert.Equal(t, bson.RawValue{}, rep.Lookup("operationTime"), rep.String())
	assert.Equal(t, bson.RawValue{}, rep.Lookup("$clusterTime"), rep.String())
}

// TestAfterClusterTime: a read with afterClusterTime at or before the
// cluster time is served (every earlier write is done), one later than
// the cluster time is refused with InvalidOptions (72), as mongod does;
// a causally consistent session reads its own writes.
func TestAfterClusterTime(t *testing.T) {
	t.Parallel()
	srv, client := startReplSet(t, Options{})
	w := newWireClient(t, srv)
	ins := w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}}, {Key: "$db", Value: "act"}})
	at := timestampOf(t, ins, "operationTime")
	find := func(ts bson.Timestamp) bson.Raw {
		return w.run(bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: bson.D{{Key: "afterClusterTime", Value: ts}}}, {Key: "$db", Value: "act"}})
	}
	rep := find(at)
	require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
	docs, _ := rep.Lookup("cursor", "firstBatch").Array().Values()
	assert.Len(t, docs, 1)
	rep = find(bson.Timestamp{T: at.T + 3600, I: 1})
	assert.EqualValues(t, codeInvalidOptions, i32(rep.Lookup("code")), rep.String())
	assert.Equal(t, "InvalidOptions", str(rep.Lookup("codeName")))

	ctx := ctxTimeout(t)
	sess, err := client.StartSession(options.Session().SetCausalConsistency(true))
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	sctx := mongo.NewSessionContext(ctx, sess)
	coll := client.Database("act").Collection("c")
	_, err = coll.InsertOne(sctx, bson.D{{Key: "_id", Value: 2}})
	require.NoError(t, err)
	require.NotNil(t, sess.OperationTime(), "the driver learnt the operation time from the reply")
	n, err := coll.CountDocuments(sctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
}

// TestSnapshotReads: readConcern snapshot outside a transaction is served
// at a snapshot (the cursor reports atClusterTime) while the collection
// has not changed since; at a time before a later write it is refused
// with SnapshotTooOld (239), never answered from current data; commands
// that take no snapshot read concern are refused with InvalidOptions (72).
func TestSnapshotReads(t *testing.T) {
	t.Parallel()
	srv, _ := startReplSet(t, Options{})
	w := newWireClient(t, srv)
	w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}}, {Key: "$db", Value: "snap"}})
	snap := bson.D{{Key: "level", Value: "snapshot"}}
	rep := w.run(bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: snap}, {Key: "$db", Value: "snap"}})
	require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
	at := timestampOf(t, rep, "cursor", "atClusterTime")

	again := w.run(bson.D{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.A{}}, {Key: "cursor", Value: bson.D{}},
		{Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: at}}}, {Key: "$db", Value: "snap"}})
	require.Equal(t, 1.0, again.Lookup("ok").Double(), again.String())
	assert.Equal(t, at, timestampOf(t, again, "cursor", "atClusterTime"))

	w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 2}}}}, {Key: "$db", Value: "snap"}})
	old := w.run(bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: at}}}, {Key: "$db", Value: "snap"}})
	assert.EqualValues(t, codeSnapshotTooOld, i32(old.Lookup("code")), old.String())
	assert.Equal(t, "SnapshotTooOld", str(old.Lookup("codeName")))

	other := w.run(bson.D{{Key: "find", Value: "other"}, {Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: at}}}, {Key: "$db", Value: "snap"}})
	assert.Equal(t, 1.0, other.Lookup("ok").Double(), "a collection unchanged since: %s", other)

	// A snapshot cursor's later batches are refused once the collection
	// changed, never read from current data.
	rep = w.run(bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: 1}, {Key: "readConcern", Value: snap}, {Key: "$db", Value: "snap"}})
	require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
	cursor := i64(rep.Lookup("cursor", "id"))
	require.NotZero(t, cursor, rep.String())
	w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 3}}}}, {Key: "$db", Value: "snap"}})
	rep = w.run(bson.D{{Key: "getMore", Value: cursor}, {Key: "collection", Value: "c"}, {Key: "$db", Value: "snap"}})
	assert.EqualValues(t, codeSnapshotTooOld, i32(rep.Lookup("code")), rep.String())

	for _, cmd := range []bson.D{
		{{Key: "listCollections", Value: 1}},
		{{Key: "count", Value: "c"}},
		{{Key: "listIndexes", Value: "c"}},
	} {
		rep := w.run(append(cmd, bson.E{Key: "readConcern", Value: snap}, bson.E{Key: "$db", Value: "snap"}))
		assert.EqualValues(t, codeInvalidOptions, i32(rep.Lookup("code")), "%v: %s", cmd, rep)
	}
}
