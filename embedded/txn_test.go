package embedded

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// startReplSet starts a replica-set-mode server in memory and connects a
// client to it.
func startReplSet(t *testing.T, opts Options) (*Server, *mongo.Client) {
	t.Helper()
	opts.InMemory = true
	opts.ReplicaSet = "rs0"
	srv := startServer(t, opts)
	return srv, connect(t, srv.URI())
}

// inTxn runs fn in a transaction of a new session of client.
func inTxn(ctx context.Context, client *mongo.Client, fn func(ctx context.Context) (any, error)) (any, error) {
	sess, err := client.StartSession()
	if err != nil {
		return nil, err
	}
	defer sess.EndSession(context.Background())
	return sess.WithTransaction(ctx, fn)
}

func TestReplSetHello(t *testing.T) {
	t.Parallel()
	srv, client := startReplSet(t, Options{})
	require.Contains(t, srv.URI(), "replicaSet=rs0")
	ctx := ctxTimeout(t)
	var h struct {
		SetName           string   `bson:"setName"`
		Hosts             []string `bson:"hosts"`
		Primary           string   `bson:"primary"`
		Me                string   `bson:"me"`
		IsWritablePrimary bool     `bson:"isWritablePrimary"`
		MaxWriteBatchSize int      `bson:"maxWriteBatchSize"`
		Sessions          int      `bson:"logicalSessionTimeoutMinutes"`
	}
	require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&h))
	host := srv.URI()[len("mongodb://"):]
	host = host[:len(host)-len("/?replicaSet=rs0")]
	assert.Equal(t, "rs0", h.SetName)
	assert.Equal(t, []string{host}, h.Hosts)
	assert.Equal(t, host, h.Primary)
	assert.Equal(t, host, h.Me)
	assert.True(t, h.IsWritablePrimary)
	assert.Equal(t, maxWriteBatch, h.MaxWriteBatchSize)
	assert.Equal(t, 30, h.Sessions)

	err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "replSetInitiate", Value: bson.D{}}}).Err()
	var ce mongo.CommandError
	require.ErrorAs(t, err, &ce)
	assert.EqualValues(t, codeAlreadyInitialized, ce.Code)
}

func TestTransactionCommitAndAbort(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{})
	ctx := ctxTimeout(t)
	coll := client.Database("txn").Collection("c")
	_, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "a"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: "b"}},
	})
	require.NoError(t, err)
	before := all(t, coll)

	// Insert, update and delete in one transaction, then abort: nothing changes.
	errBoom := errors.New("boom")
	_, err = inTxn(ctx, client, func(ctx context.Context) (any, error) {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "v", Value: "c"}}); err != nil {
			return nil, err
		}
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "changed"}}}}); err != nil {
			return nil, err
		}
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 9}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "upserted"}}}},
			options.UpdateOne().SetUpsert(true)); err != nil {
			return nil, err
		}
		if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 2}}); err != nil {
			return nil, err
		}
		var got bson.M
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got); err != nil {
			return nil, err
		}
		if got["v"] != "changed" {
			return nil, errors.New("the transaction does not see its own write")
		}
		return nil, errBoom
	})
	require.ErrorIs(t, err, errBoom)
	assert.Equal(t, before, all(t, coll))

	// The same, committed: everything changes.
	_, err = inTxn(ctx, client, func(ctx context.Context) (any, error) {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "v", Value: "c"}}); err != nil {
			return nil, err
		}
		if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 2}}); err != nil {
			return nil, err
		}
		return nil, nil
	})
	require.NoError(t, err)
	assert.Len(t, all(t, coll), 2)
}

// all returns every document of coll, in _id order.
func all(t *testing.T, coll *mongo.Collection) []bson.M {
	t.Helper()
	ctx := ctxTimeout(t)
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	require.NoError(t, err)
	var docs []bson.M
	require.NoError(t, cur.All(ctx, &docs))
	return docs
}

// TestTransactionTransfers moves amounts between accounts in concurrent
// transactions that fail at random: the total never changes.
func TestTransactionTransfers(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{})
	ctx := ctxTimeout(t)
	coll := client.Database("bank").Collection("accounts")
	const accounts, start = 10, 100
	for i := range accounts {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "balance", Value: start}})
		require.NoError(t, err)
	}
	errRandom := errors.New("random failure")
	var committed, failed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 15 {
				from, to, amount := r.IntN(accounts), r.IntN(accounts), r.IntN(20)+1
				fail := r.IntN(4) == 0
				_, err := inTxn(ctx, client, func(ctx context.Context) (any, error) {
					if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: from}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: -amount}}}}); err != nil {
						return nil, err
					}
					if fail {
						return nil, errRandom
					}
					_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: to}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: amount}}}})
					return nil, err
				})
				if err != nil {
					assert.ErrorIs(t, err, errRandom)
					failed.Add(1)
					continue
				}
				committed.Add(1)
			}
		})
	}
	wg.Wait()
	var total int
	for _, d := range all(t, coll) {
		total += int(d["balance"].(int32))
	}
	assert.Equal(t, accounts*start, total)
	assert.Equal(t, int64(8*15), committed.Load()+failed.Load())
	assert.Positive(t, committed.Load())
	assert.Positive(t, failed.Load())
}

// TestTransactionIsolation: an outside reader never sees a write the
// transaction has not committed, and an outside writer is not stuck
// behind an idle transaction: it gets through within the wait bound and
// the transaction is aborted.
func TestTransactionIsolation(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{TransactionWait: 300 * time.Millisecond})
	ctx := ctxTimeout(t)
	coll := client.Database("iso").Collection("c")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 0}})
	require.NoError(t, err)

	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)
	_, err = coll.UpdateOne(sctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}})
	require.NoError(t, err)

	// An outside read waits for the transaction; when the transaction
	// stays idle past the bound it is aborted, and the reader sees 0.
	start := time.Now()
	var got bson.M
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
	assert.EqualValues(t, 0, got["v"], "an uncommitted write was seen")
	assert.Less(t, time.Since(start), 5*time.Second)

	// The transaction was aborted: its next command fails with
	// NoSuchTransaction, labelled transient, and commit fails the same way.
	_, err = coll.UpdateOne(sctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}})
	var se mongo.ServerError
	require.ErrorAs(t, err, &se)
	assert.True(t, se.HasErrorCode(codeNoSuchTransaction), err)
	assert.True(t, se.HasErrorLabel(labelTransient), err)
	require.Error(t, sess.CommitTransaction(ctx))

	// An outside writer behind a transaction that is still working waits
	// for its commit and then sees its result.
	_, err = inTxn(ctx, client, func(ctx context.Context) (any, error) {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 10}}}})
		return nil, err
	})
	require.NoError(t, err)
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}})
	require.NoError(t, err)
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
	assert.EqualValues(t, 11, got["v"])
}

// TestTransactionOtherCollections: a transaction holds only the
// collections it touched; other collections stay open.
func TestTransactionOtherCollections(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{TransactionWait: time.Minute})
	ctx := ctxTimeout(t)
	a, b := client.Database("other").Collection("a"), client.Database("other").Collection("b")
	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)
	_, err = a.InsertOne(sctx, bson.D{{Key: "x", Value: 1}})
	require.NoError(t, err)

	start := time.Now()
	_, err = b.InsertOne(ctx, bson.D{{Key: "y", Value: 1}})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)

	require.NoError(t, sess.CommitTransaction(ctx))
	n, err := a.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
}

func TestTransactionLifetime(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{TransactionLifetime: 200 * time.Millisecond})
	ctx := ctxTimeout(t)
	coll := client.Database("life").Collection("c")
	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	sctx := mongo.NewSessionContext(ctx, sess)
	_, err = coll.InsertOne(sctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	err = sess.CommitTransaction(ctx)
	var se mongo.ServerError
	require.ErrorAs(t, err, &se)
	assert.True(t, se.HasErrorCode(codeNoSuchTransaction), err)
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestTransactionEndSessionAborts(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{TransactionWait: time.Minute})
	ctx := ctxTimeout(t)
	coll := client.Database("end").Collection("c")
	sess, err := client.StartSession()
	require.NoError(t, err)
	require.NoError(t, sess.StartTransaction())
	_, err = coll.InsertOne(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	// The driver pools ended sessions; endSessions reaches the server on
	// Disconnect. Send it directly, as a driver does.
	lsid := sess.ID()
	require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: "endSessions", Value: bson.A{lsid}}}).Err())
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n)
	sess.EndSession(ctx)
}

func TestTransactionRefusedCommands(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{})
	ctx := ctxTimeout(t)
	db := client.Database("refused")
	_, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
	require.NoError(t, err)
	for _, cmd := range []bson.D{
		{{Key: "count", Value: "c"}},
		{{Key: "listCollections", Value: 1}},
		{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "name", Value: "x"}}}}},
		{{Key: "drop", Value: "c"}},
	} {
		_, err := inTxn(ctx, client, func(ctx context.Context) (any, error) {
			return nil, db.RunCommand(ctx, cmd).Err()
		})
		var se mongo.ServerError
		require.ErrorAs(t, err, &se, "%v", cmd)
		assert.True(t, se.HasErrorCode(codeOperationNotSupportedInTransaction), "%v: %v", cmd, err)
	}
	n, err := db.Collection("c").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
}

// TestTransactionCommitRetried: a commit sent again after it succeeded
// answers ok, as the driver's retried commit expects.
func TestTransactionCommitRetried(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{})
	ctx := ctxTimeout(t)
	coll := client.Database("retry").Collection("c")
	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(context.Background())
	require.NoError(t, sess.StartTransaction())
	_, err = coll.InsertOne(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	require.NoError(t, sess.CommitTransaction(ctx))
	require.NoError(t, sess.CommitTransaction(ctx)) // the driver sends commitTransaction again
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
}

// failPointOn configures the failCommand fail point, turned off at the end of the test.
func failPointOn(t *testing.T, client *mongo.Client, mode any, data bson.D) {
	t.Helper()
	namedFailPointOn(t, client, "failCommand", mode, data)
}

// namedFailPointOn configures the fail point name, turned off at the end
// of the test.
func namedFailPointOn(t *testing.T, client *mongo.Client, name string, mode any, data bson.D) {
	t.Helper()
	ctx := ctxTimeout(t)
	require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{
		{Key: "configureFailPoint", Value: name}, {Key: "mode", Value: mode}, {Key: "data", Value: data}}).Err())
	t.Cleanup(func() {
		_ = client.Database("admin").RunCommand(context.Background(), bson.D{
			{Key: "configureFailPoint", Value: name}, {Key: "mode", Value: "off"}}).Err()
	})
}

// TestFailPointRetriesTransaction: a transient error injected on an
// insert makes WithTransaction run its callback again, and the result is
// committed once; the TransientTransactionError label comes from the fail
// point's errorLabels or, without them, from the server, as mongod labels
// a WriteConflict (112) in a transaction.
func TestFailPointRetriesTransaction(t *testing.T) {
	t.Parallel()
	for name, labels := range map[string]bson.D{
		"errorLabels": {{Key: "errorLabels", Value: bson.A{labelTransient}}},
		"server":      nil,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, client := startReplSet(t, Options{})
			ctx := ctxTimeout(t)
			coll := client.Database("fp").Collection("c")
			failPointOn(t, client, bson.D{{Key: "times", Value: 1}}, append(bson.D{
				{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: codeWriteConflict}}, labels...))
			var calls int
			_, err := inTxn(ctx, client, func(ctx context.Context) (any, error) {
				calls++
				if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
					return nil, err
				}
				_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
				return nil, err
			})
			require.NoError(t, err)
			assert.Equal(t, 2, calls)
			assert.Len(t, all(t, coll), 2)
		})
	}
}

func TestFailPointModes(t *testing.T) {
	t.Parallel()
	for _, replSet := range []string{"", "rs0"} {
		t.Run("replset="+replSet, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, Options{InMemory: true, ReplicaSet: replSet})
			client := connect(t, srv.URI(), options.Client().SetAppName("fp-test").SetRetryWrites(false).SetRetryReads(false))
			other := connect(t, srv.URI(), options.Client().SetAppName("other"))
			ctx := ctxTimeout(t)
			coll := client.Database("fp").Collection("c")

			// times: 2 with an error code and labels, for one appName only.
			failPointOn(t, client, bson.D{{Key: "times", Value: 2}}, bson.D{
				{Key: "failCommands", Value: bson.A{"find"}}, {Key: "errorCode", Value: 2},
				{Key: "errorLabels", Value: bson.A{"SomeLabel"}}, {Key: "appName", Value: "fp-test"}})
			require.ErrorIs(t, other.Database("fp").Collection("c").FindOne(ctx, bson.D{}).Err(), mongo.ErrNoDocuments, "another appName is not failed")
			for range 2 {
				err := coll.FindOne(ctx, bson.D{}).Err()
				var se mongo.ServerError
				require.ErrorAs(t, err, &se)
				assert.True(t, se.HasErrorCode(2), err)
				assert.True(t, se.HasErrorLabel("SomeLabel"), err)
			}
			assert.ErrorIs(t, coll.FindOne(ctx, bson.D{}).Err(), mongo.ErrNoDocuments)

			// closeConnection: the driver sees a network error.
			failPointOn(t, client, "alwaysOn", bson.D{
				{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "closeConnection", Value: true}, {Key: "appName", Value: "fp-test"}})
			_, err := coll.InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
			require.Error(t, err)
			assert.True(t, mongo.IsNetworkError(err), err)

			// blockConnection: the command waits, then runs.
			failPointOn(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{
				{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "blockConnection", Value: true},
				{Key: "blockTimeMS", Value: 300}, {Key: "appName", Value: "fp-test"}})
			start := time.Now()
			_, err = coll.InsertOne(ctx, bson.D{{Key: "x", Value: 2}})
			require.NoError(t, err)
			assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

			// off.
			require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{
				{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}).Err())
			_, err = coll.InsertOne(ctx, bson.D{{Key: "x", Value: 3}})
			require.NoError(t, err)
		})
	}
}
