package embedded

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// wireClient sends commands over one raw connection and returns the
// reply documents exactly as the server sent them.
type wireClient struct {
	t    *testing.T
	conn net.Conn
	id   int32
}

func newWireClient(t *testing.T, srv *Server) *wireClient {
	t.Helper()
	addr, _, _ := strings.Cut(strings.TrimPrefix(srv.URI(), "mongodb://"), "/")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &wireClient{t: t, conn: conn}
}

// run sends cmd and returns its reply.
func (w *wireClient) run(cmd bson.D) bson.Raw {
	w.t.Helper()
	w.id++
	require.NoError(w.t, w.conn.SetDeadline(time.Now().Add(30*time.Second)))
	_, err := w.conn.Write(opMsg(w.t, w.id, 0, cmd))
	require.NoError(w.t, err)
	rep, err := readMessage(w.conn)
	require.NoError(w.t, err)
	body, err := replyBody(rep)
	require.NoError(w.t, err)
	return bson.Raw(body)
}

// newLsid returns a new logical session id.
func newLsid() bson.D {
	id := bson.NewObjectID()
	data := make([]byte, 16)
	copy(data, id[:])
	return bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: data}}}
}

func labelsOf(t *testing.T, rep bson.Raw) []string {
	t.Helper()
	var r struct {
		ErrorLabels []string `bson:"errorLabels"`
	}
	require.NoError(t, bson.Unmarshal(rep, &r))
	return r.ErrorLabels
}

// TestCodeNames: every error reply names its code as error_codes.yml
// does, codes the front never makes itself included.
func TestCodeNames(t *testing.T) {
	t.Parallel()
	srv, client := startReplSet(t, Options{})
	w := newWireClient(t, srv)
	for code, name := range map[int32]string{24: "LockTimeout", 91: "ShutdownInProgress", 11000: "DuplicateKey", 50: "MaxTimeMSExpired"} {
		failPointOn(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{
			{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "errorCode", Value: code}})
		rep := w.run(bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
		assert.Equal(t, code, i32(rep.Lookup("code")), rep.String())
		assert.Equal(t, name, str(rep.Lookup("codeName")), rep.String())
	}
	assert.Len(t, codeNames, 465, "the table of error_codes.yml")
}

// TestTransientLabels: inside a transaction, mongod labels codes 24,
// 112, 246, 251 and 267 (and retriable ones) TransientTransactionError;
// on commitTransaction a retriable code gets UnknownTransactionCommitResult
// and RetryableWriteError; outside a transaction a retryable write's
// retriable code gets RetryableWriteError and no transaction label.
func TestTransientLabels(t *testing.T) {
	t.Parallel()
	srv, client := startReplSet(t, Options{})
	w := newWireClient(t, srv)
	lsid := newLsid()
	var txn int64
	for _, code := range []int32{24, 112, 246, 251, 267, 91} {
		txn++
		failPointOn(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{
			{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: code}})
		rep := w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "x", Value: 1}}}},
			{Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: txn}, {Key: "startTransaction", Value: true},
			{Key: "autocommit", Value: false}, {Key: "$db", Value: "labels"}})
		assert.Equal(t, []string{labelTransient}, labelsOf(t, rep), "code %d in a transaction: %s", code, rep)
		w.run(bson.D{{Key: "abortTransaction", Value: 1}, {Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: txn},
			{Key: "autocommit", Value: false}, {Key: "$db", Value: "admin"}})
	}

	// commitTransaction.
	for code, want := range map[int32][]string{
		91:  {labelRetryableWrite, labelUnknownCommit},
		112: {labelTransient},
		251: {labelTransient},
		50:  {labelUnknownCommit},
		2:   nil,
	} {
		txn++
		rep := w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "x", Value: 1}}}},
			{Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: txn}, {Key: "startTransaction", Value: true},
			{Key: "autocommit", Value: false}, {Key: "$db", Value: "labels"}})
		require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
		failPointOn(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "errorCode", Value: code}})
		rep = w.run(bson.D{{Key: "commitTransaction", Value: 1}, {Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: txn},
			{Key: "autocommit", Value: false}, {Key: "$db", Value: "admin"}})
		assert.ElementsMatch(t, want, labelsOf(t, rep), "commit failing with %d: %s", code, rep)
		w.run(bson.D{{Key: "abortTransaction", Value: 1}, {Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: txn},
			{Key: "autocommit", Value: false}, {Key: "$db", Value: "admin"}})
	}

	// A retryable write outside a transaction.
	txn++
	failPointOn(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 189}})
	rep := w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "x", Value: 1}}}},
		{Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: txn}, {Key: "$db", Value: "labels"}})
	assert.Equal(t, []string{labelRetryableWrite}, labelsOf(t, rep), rep.String())
	// Without txnNumber, no label.
	failPointOn(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 189}})
	rep = w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "x", Value: 1}}}},
		{Key: "$db", Value: "labels"}})
	assert.Empty(t, labelsOf(t, rep), rep.String())
}

// TestLabelsWithWriteConcernError: failCommand's errorLabels stay on a
// reply it gives a writeConcernError, and without errorLabels a commit's
// writeConcernError gets UnknownTransactionCommitResult.
func TestLabelsWithWriteConcernError(t *testing.T) {
	t.Parallel()
	srv, client := startReplSet(t, Options{})
	w := newWireClient(t, srv)
	failPointOn(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}},
		{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 91}, {Key: "errmsg", Value: "Replication is being shut down"}}},
		{Key: "errorLabels", Value: bson.A{"RetryableWriteError", "Custom"}}})
	rep := w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "x", Value: 1}}}},
		{Key: "$db", Value: "wce"}})
	assert.Equal(t, []string{"RetryableWriteError", "Custom"}, labelsOf(t, rep), rep.String())
	assert.Equal(t, "ShutdownInProgress", str(rep.Lookup("writeConcernError", "codeName")), rep.String())

	lsid := newLsid()
	rep = w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "x", Value: 2}}}},
		{Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: int64(1)}, {Key: "startTransaction", Value: true},
		{Key: "autocommit", Value: false}, {Key: "$db", Value: "wce"}})
	require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
	failPointOn(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"commitTransaction"}},
		{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 64}, {Key: "errmsg", Value: "waiting for replication timed out"}}}})
	rep = w.run(bson.D{{Key: "commitTransaction", Value: 1}, {Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: int64(1)},
		{Key: "autocommit", Value: false}, {Key: "$db", Value: "admin"}})
	assert.Equal(t, []string{labelUnknownCommit}, labelsOf(t, rep), rep.String())
}

// TestFailPointKeepsTransaction: an error the failCommand fail point
// injects inside a transaction leaves the transaction running, as on
// mongod: the next command and the commit succeed.
func TestFailPointKeepsTransaction(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{})
	ctx := ctxTimeout(t)
	coll := client.Database("fpk").Collection("c")
	failPointOn(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 2}})
	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)
	_, err = coll.InsertOne(sctx, bson.D{{Key: "_id", Value: 1}})
	require.Error(t, err, "the fail point fails the first insert")
	_, err = coll.InsertOne(sctx, bson.D{{Key: "_id", Value: 2}})
	require.NoError(t, err)
	require.NoError(t, sess.CommitTransaction(ctx))
	assert.Len(t, all(t, coll), 1)
}

// TestFailPointSkip: mode {skip: n} lets n commands through, then acts
// on every one.
func TestFailPointSkip(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Options{InMemory: true})
	client := connect(t, srv.URI(), options.Client().SetRetryWrites(false))
	ctx := ctxTimeout(t)
	coll := client.Database("skip").Collection("c")
	failPointOn(t, client, bson.D{{Key: "skip", Value: 2}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 2}})
	for i := range 4 {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "i", Value: i}})
		if i < 2 {
			assert.NoError(t, err, i)
		} else {
			assert.Error(t, err, i)
		}
	}
}

// i32, i64 and str read a reply's value of that type, or the zero value
// where it is missing or of another type, so that an assertion fails
// instead of the test panicking.
func i32(v bson.RawValue) int32 {
	n, _ := v.Int32OK()
	return n
}

func i64(v bson.RawValue) int64 {
	n, _ := v.Int64OK()
	return n
}

func str(v bson.RawValue) string {
	s, _ := v.StringValueOK()
	return s
}

// eachMode runs fn on a new in-memory server in each mode, standalone
// and replica set, in parallel.
func eachMode(t *testing.T, fn func(t *testing.T, srv *Server)) {
	for _, replSet := range []string{"", "rs0"} {
		t.Run("replset="+replSet, func(t *testing.T) {
			t.Parallel()
			fn(t, startServer(t, Options{InMemory: true, ReplicaSet: replSet}))
		})
	}
}
