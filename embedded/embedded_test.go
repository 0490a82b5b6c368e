package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// startServer starts a server closed at the end of the test.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	srv, err := Start(t.Context(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	return srv
}

// connect returns a driver client for uri, disconnected at the end of the test.
func connect(t *testing.T, uri string, opts ...*options.ClientOptions) *mongo.Client {
	t.Helper()
	all := append([]*options.ClientOptions{options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second)}, opts...)
	client, err := mongo.Connect(all...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client
}

// ctxTimeout returns a context that bounds one step of a test.
func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requireWorks checks that a driver client can still write and read through uri.
func requireWorks(t *testing.T, uri string) {
	t.Helper()
	ctx := ctxTimeout(t)
	client := connect(t, uri)
	coll := client.Database("wedge").Collection("probe")
	res, err := coll.InsertOne(ctx, bson.D{{Key: "at", Value: time.Now().UnixNano()}})
	require.NoError(t, err)
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: res.InsertedID}}).Err())
}

func TestEmbeddedConcurrentClaims(t *testing.T) {
	srv := startServer(t, Options{InMemory: true})
	ctx := ctxTimeout(t)
	coll := connect(t, srv.URI()).Database("claims").Collection("jobs")

	const jobs, workers = 200, 8
	docs := make([]any, jobs)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "claimed", Value: false}}
	}
	_, err := coll.InsertMany(ctx, docs)
	require.NoError(t, err)

	claims := make([][]int, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for {
				var doc struct {
					ID      int    `bson:"_id"`
					Claimer string `bson:"claimer"`
				}
				err := coll.FindOneAndUpdate(ctx,
					bson.D{{Key: "claimed", Value: false}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "claimed", Value: true}, {Key: "claimer", Value: fmt.Sprint(w)}}}},
					options.FindOneAndUpdate().SetReturnDocument(options.After),
				).Decode(&doc)
				if errors.Is(err, mongo.ErrNoDocuments) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				if doc.Claimer != fmt.Sprint(w) {
					errs <- fmt.Errorf("worker %d got job %d claimed by %q", w, doc.ID, doc.Claimer)
					return
				}
				claims[w] = append(claims[w], doc.ID)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	times := make(map[int]int)
	perWorker := make([]int, workers)
	for w, ids := range claims {
		perWorker[w] = len(ids)
		for _, id := range ids {
			times[id]++
		}
	}
	var twice []int
	for id, n := range times {
		if n > 1 {
			twice = append(twice, id)
		}
	}
	sort.Ints(twice)
	t.Logf("%d jobs, %d workers: %d claimed, %d claimed more than once, claims per worker %v",
		jobs, workers, len(times), len(twice), perWorker)
	assert.Empty(t, twice, "jobs claimed more than once")
	assert.Len(t, times, jobs, "jobs claimed at least once")

	left, err := coll.CountDocuments(ctx, bson.D{{Key: "claimed", Value: false}})
	require.NoError(t, err)
	assert.Zero(t, left, "unclaimed jobs")
}

func TestEmbeddedConcurrentInc(t *testing.T) {
	srv := startServer(t, Options{InMemory: true})
	ctx := ctxTimeout(t)
	coll := connect(t, srv.URI()).Database("inc").Collection("counters")

	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "c"}, {Key: "n", Value: 0}})
	require.NoError(t, err)

	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				res, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "c"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
				if err == nil && res.ModifiedCount != 1 {
					err = fmt.Errorf("modified %d documents", res.ModifiedCount)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	var doc struct {
		N int `bson:"n"`
	}
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: "c"}}).Decode(&doc))
	t.Logf("%d goroutines x %d $inc: n = %d", workers, each, doc.N)
	assert.Equal(t, workers*each, doc.N)
}

func TestEmbeddedConcurrentUniqueInsert(t *testing.T) {
	srv := startServer(t, Options{InMemory: true})
	ctx := ctxTimeout(t)
	coll := connect(t, srv.URI()).Database("unique").Collection("keys")

	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "key", Value: 1}},
		Options: options.Index().SetName("key_unique").SetUnique(true),
	})
	require.NoError(t, err)

	const workers = 8
	start := make(chan struct{})
	results := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			_, err := coll.InsertOne(ctx, bson.D{{Key: "key", Value: "k"}, {Key: "worker", Value: w}})
			results <- err
		})
	}
	close(start)
	wg.Wait()
	close(results)

	var won, dup int
	for err := range results {
		switch {
		case err == nil:
			won++
		case mongo.IsDuplicateKeyError(err):
			dup++
		default:
			t.Errorf("unexpected insert error: %v", err)
		}
	}
	t.Logf("%d concurrent inserts of one unique key: %d succeeded, %d duplicate-key errors", workers, won, dup)
	assert.Equal(t, 1, won)
	assert.Equal(t, workers-1, dup)

	n, err := coll.CountDocuments(ctx, bson.D{{Key: "key", Value: "k"}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
}

// An unacknowledged write is an OP_MSG with moreToCome, which FerretDB
// answers anyway; the front must swallow that answer so that the
// connection's next command gets its own reply.
func TestEmbeddedUnacknowledgedWrites(t *testing.T) {
	srv := startServer(t, Options{InMemory: true})
	ctx := ctxTimeout(t)
	client := connect(t, srv.URI(), options.Client().SetMaxPoolSize(1))
	db := client.Database("unack")
	w0 := db.Collection("docs", options.Collection().SetWriteConcern(writeconcern.Unacknowledged()))

	const n = 20
	for i := range n {
		_, err := w0.InsertOne(ctx, bson.D{{Key: "_id", Value: i}})
		require.NoError(t, err)
		// An acknowledged command on the same (only) connection right after.
		var doc bson.M
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Decode(&doc))
		require.EqualValues(t, 1, doc["ok"], "ping reply %v", doc)
	}
	count, err := db.Collection("docs").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, n, count)
}

// FerretDB's per-connection and per-failed-command logs stay below Info.
func TestEmbeddedQuietLogs(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := Start(t.Context(), Options{InMemory: true, Logger: logger})
	require.NoError(t, err)
	ctx := ctxTimeout(t)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	db := client.Database("quiet")
	_, err = db.Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
	require.NoError(t, err)
	require.Error(t, db.RunCommand(ctx, bson.D{{Key: "noSuchCommand", Value: 1}}).Err())
	require.NoError(t, client.Disconnect(ctx))
	require.NoError(t, srv.Close())

	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, buf.String(), "embedded: serving")
	assert.NotContains(t, buf.String(), "component=ferretdb")
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestEmbeddedStartCloseTwice(t *testing.T) {
	for i := range 2 {
		srv, err := Start(t.Context(), Options{})
		require.NoError(t, err, "start %d", i)
		requireWorks(t, srv.URI())
		require.NoError(t, srv.Close(), "close %d", i)
		require.NoError(t, srv.Close(), "second Close of server %d", i)
	}
}

func TestEmbeddedPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxTimeout(t)

	srv, err := Start(ctx, Options{Dir: dir})
	require.NoError(t, err)
	client := connect(t, srv.URI())
	_, err = client.Database("keep").Collection("docs").InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "v", Value: 42}})
	require.NoError(t, err)
	require.NoError(t, client.Disconnect(ctx))
	require.NoError(t, srv.Close())

	srv = startServer(t, Options{Dir: dir})
	var doc struct {
		V int `bson:"v"`
	}
	err = connect(t, srv.URI()).Database("keep").Collection("docs").FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&doc)
	require.NoError(t, err)
	assert.Equal(t, 42, doc.V)
}

func TestEmbeddedDirInUse(t *testing.T) {
	dir := t.TempDir()
	first, err := Start(t.Context(), Options{Dir: dir})
	require.NoError(t, err)

	_, err = Start(t.Context(), Options{Dir: dir})
	require.ErrorIs(t, err, ErrDirInUse)
	requireWorks(t, first.URI())

	require.NoError(t, first.Close())
	srv := startServer(t, Options{Dir: dir})
	requireWorks(t, srv.URI())
}

func TestEmbeddedInMemoryWithDir(t *testing.T) {
	_, err := Start(t.Context(), Options{InMemory: true, Dir: t.TempDir()})
	require.Error(t, err)
}

// Close removes the temporary directories (data and socket). InMemory
// puts the data in Options.ramDir, or in the temporary directory when
// that is unusable.
func TestEmbeddedTempDirsRemoved(t *testing.T) {
	tmp, ram := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)

	for _, tc := range []struct {
		name    string
		opts    Options
		ramDir  string
		dataDir string // where the data files go
	}{
		{"default", Options{}, ram, tmp},
		{"in memory", Options{InMemory: true}, ram, ram},
		{"in memory without ramDir", Options{InMemory: true}, filepath.Join(ram, "missing"), tmp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.ramDir = tc.ramDir
			srv, err := Start(t.Context(), tc.opts)
			require.NoError(t, err)
			requireWorks(t, srv.URI())
			assert.NotEmpty(t, sqliteFiles(t, tc.dataDir), "data files in %s", tc.dataDir)
			socks, err := filepath.Glob(filepath.Join(tmp, "*", "*.sock"))
			require.NoError(t, err)
			require.Len(t, socks, 1, "FerretDB's Unix socket")
			fi, err := os.Stat(filepath.Dir(socks[0]))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "the socket's directory is private")
			if tc.dataDir != tmp {
				assert.Empty(t, sqliteFiles(t, tmp), "data files in TMPDIR")
			}
			require.NoError(t, srv.Close())
			for _, dir := range []string{tmp, ram} {
				left, err := os.ReadDir(dir)
				require.NoError(t, err)
				assert.Empty(t, left, "left in %s after Close", dir)
			}
		})
	}
}

// sqliteFiles lists the SQLite database files under dir.
func sqliteFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.sqlite"))
	require.NoError(t, err)
	return files
}

func TestEmbeddedCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()

	srv, err := Start(t.Context(), Options{})
	require.NoError(t, err)
	ctx := ctxTimeout(t)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	_, err = client.Database("life").Collection("docs").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
	require.NoError(t, err)
	require.NoError(t, client.Disconnect(ctx))

	addr := srv.URI()[len("mongodb://") : len(srv.URI())-1]
	require.NoError(t, srv.Close())

	// Close waits for everything it started: no goroutine is left in the
	// front or in FerretDB the moment it returns.
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "github.com/FerretDB/") || strings.Contains(g, "embedded.(*front)") {
			t.Errorf("goroutine running after Close:\n%s", g)
		}
	}

	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = conn.Close()
	}
	require.Error(t, err, "the port is still open after Close")

	// The driver's background goroutines end shortly after Disconnect.
	deadline := time.Now().Add(10 * time.Second)
	after := runtime.NumGoroutine()
	for after > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	t.Logf("goroutines: %d before Start, %d after Close", before, after)
	if after > before {
		t.Fatalf("%d goroutines leaked:\n%s", after-before, buf[:runtime.Stack(buf, true)])
	}
}

// Where a Unix socket cannot be had (here: its path would be too long),
// FerretDB listens on a loopback TCP port instead.
func TestEmbeddedBackendOverTCP(t *testing.T) {
	tmp := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	require.NoError(t, os.MkdirAll(tmp, 0o700))
	t.Setenv("TMPDIR", tmp)

	srv := startServer(t, Options{InMemory: true})
	requireWorks(t, srv.URI())
	socks, err := filepath.Glob(filepath.Join(tmp, "*", "*.sock"))
	require.NoError(t, err)
	assert.Empty(t, socks)
}

// rawConn dials the server without a driver.
func rawConn(t *testing.T, srv *Server) net.Conn {
	t.Helper()
	addr := srv.URI()[len("mongodb://") : len(srv.URI())-1]
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// requireClosedByServer checks that the server closes conn without replying.
func requireClosedByServer(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	data, err := io.ReadAll(conn)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the connection")
	require.Empty(t, data)
}

func TestEmbeddedWedgeBadLength(t *testing.T) {
	srv := startServer(t, Options{InMemory: true})
	for _, length := range []int32{5, 100_000_000} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			conn := rawConn(t, srv)
			_, err := conn.Write(header(length, 1, 0, opCodeMsg))
			require.NoError(t, err)
			requireClosedByServer(t, conn)
			requireWorks(t, srv.URI())
		})
	}
}

func TestEmbeddedWedgeHalfMessage(t *testing.T) {
	srv := startServer(t, Options{InMemory: true})
	msg := opMsg(t, 7, 0, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})

	t.Run("stays connected", func(t *testing.T) {
		conn := rawConn(t, srv)
		_, err := conn.Write(msg[:len(msg)/2])
		require.NoError(t, err)
		requireWorks(t, srv.URI())
	})
	t.Run("disconnects", func(t *testing.T) {
		conn := rawConn(t, srv)
		_, err := conn.Write(msg[:len(msg)/2])
		require.NoError(t, err)
		require.NoError(t, conn.Close())
		requireWorks(t, srv.URI())
	})
}

func TestEmbeddedWedgeNoRead(t *testing.T) {
	srv := startServer(t, Options{InMemory: true})
	conn := rawConn(t, srv)
	msg := opMsg(t, 9, 0, bson.D{
		{Key: "insert", Value: "docs"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "from", Value: "raw"}}}},
		{Key: "$db", Value: "wedge"},
	})
	_, err := conn.Write(msg)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	requireWorks(t, srv.URI())
}

// opMsg encodes an OP_MSG with one body section.
func opMsg(t testing.TB, requestID int32, flags uint32, cmd bson.D) []byte {
	t.Helper()
	body, err := bson.Marshal(cmd)
	require.NoError(t, err)
	m := header(int32(headerLen+4+1+len(body)), requestID, 0, opCodeMsg)
	m = appendUint32(m, flags)
	m = append(m, 0) // section kind 0: body
	return append(m, body...)
}
