package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// crashCopy copies the data directory dir of a live server, between two
// commands, to a new directory: what a kill of the server at that moment
// leaves on disk (the front runs one command at a time, and SQLite has
// handed every committed write to the system).
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() || e.Name() == lockFileName {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), data, 0o600))
	}
	return dst
}

// logBuffer is a logger that keeps what it logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: &l.buf, mu: &l.mu}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// openTxn starts a transaction on a new session of client; the test ends
// the session.
func openTxn(t *testing.T, client *mongo.Client) context.Context {
	t.Helper()
	sess, err := client.StartSession()
	require.NoError(t, err)
	t.Cleanup(func() { sess.EndSession(context.Background()) })
	require.NoError(t, sess.StartTransaction())
	return mongo.NewSessionContext(ctxTimeout(t), sess)
}

// writeEverything runs in the transaction of ctx one of each write the
// front journals: insert, update of many, delete, upserts by update and by
// findAndModify, a replacement, and an insert that creates a collection.
func writeEverything(t *testing.T, ctx context.Context, db *mongo.Database) {
	t.Helper()
	c := db.Collection("c")
	_, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 4}, {Key: "v", Value: "new"}})
	require.NoError(t, err)
	_, err = c.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "x"}}}})
	require.NoError(t, err)
	_, err = c.DeleteOne(ctx, bson.D{{Key: "_id", Value: 2}})
	require.NoError(t, err)
	up, err := c.UpdateOne(ctx, bson.D{{Key: "k", Value: "u"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "up"}}}}, options.UpdateOne().SetUpsert(true))
	require.NoError(t, err)
	require.NotNil(t, up.UpsertedID)
	var got bson.M
	require.NoError(t, c.FindOne(ctx, bson.D{{Key: "k", Value: "u"}}).Decode(&got))
	assert.Equal(t, up.UpsertedID, got["_id"], "the upserted _id the reply names is the document's")
	require.NoError(t, c.FindOneAndUpdate(ctx, bson.D{{Key: "k", Value: "f"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Err())
	_, err = c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "replaced", Value: true}})
	require.NoError(t, err)
	_, err = db.Collection("fresh").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
}

// seed writes the documents writeEverything changes, and returns them.
func seed(t *testing.T, db *mongo.Database) []bson.M {
	t.Helper()
	_, err := db.Collection("c").InsertMany(ctxTimeout(t), []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "a"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: "b"}},
		bson.D{{Key: "_id", Value: 3}, {Key: "v", Value: "c"}},
	})
	require.NoError(t, err)
	return all(t, db.Collection("c"))
}

func collectionNames(t *testing.T, db *mongo.Database) []string {
	t.Helper()
	names, err := db.ListCollectionNames(ctxTimeout(t), bson.D{})
	require.NoError(t, err)
	return names
}

// startSeeded starts a replica-set-mode server on a new directory with
// opts, seeds database name (see seed) and returns the directory, the
// server, a client and the seeded documents.
func startSeeded(t *testing.T, opts Options, name string) (string, *Server, *mongo.Client, []bson.M) {
	t.Helper()
	opts.Dir, opts.ReplicaSet = t.TempDir(), "rs0"
	srv := startServer(t, opts)
	client := connect(t, srv.URI())
	return opts.Dir, srv, client, seed(t, client.Database(name))
}

// A kill during a transaction (a copy of the directory while it is open)
// leaves nothing of it after a restart; a transaction committed before it
// stays; the restart logs what it rolled back.
func TestJournalRollsBackAfterCrash(t *testing.T) {
	t.Parallel()
	dir, _, client, before := startSeeded(t, Options{}, "crash")
	db := client.Database("crash")

	committed := openTxn(t, client)
	_, err := db.Collection("c").InsertOne(committed, bson.D{{Key: "_id", Value: 10}, {Key: "v", Value: "kept"}})
	require.NoError(t, err)
	require.NoError(t, mongo.SessionFromContext(committed).CommitTransaction(committed))
	want := append(before, bson.M{"_id": int32(10), "v": "kept"})

	ctx := openTxn(t, client)
	writeEverything(t, ctx, db)
	killed := crashCopy(t, dir)
	require.NoError(t, mongo.SessionFromContext(ctx).AbortTransaction(ctx))

	var logs logBuffer
	srv2 := startServer(t, Options{Dir: killed, ReplicaSet: "rs0", Logger: logs.logger()})
	db2 := connect(t, srv2.URI()).Database("crash")
	assert.Equal(t, want, all(t, db2.Collection("c")))
	assert.Equal(t, []string{"c"}, collectionNames(t, db2), "the collection the transaction created is gone")
	out := logs.String()
	assert.Contains(t, out, "the last shutdown was not clean")
	assert.Contains(t, out, "transactions=1")
	assert.Contains(t, out, "crash.c:")
	assert.Contains(t, out, "dropped_collections=[crash.fresh]")

	// The journal is empty once recovered: a second restart rolls back nothing.
	require.NoError(t, srv2.Close())
	var logs3 logBuffer
	srv3 := startServer(t, Options{Dir: killed, ReplicaSet: "rs0", Logger: logs3.logger()})
	assert.Equal(t, want, all(t, connect(t, srv3.URI()).Database("crash").Collection("c")))
	assert.NotContains(t, logs3.String(), "not clean")
}

// Without the journal the same kill leaves the transaction's writes: the
// torn state the journal exists to prevent.
func TestJournalOffLeavesTornTransaction(t *testing.T) {
	t.Parallel()
	dir, _, client, before := startSeeded(t, Options{NoJournal: true}, "crash")
	db := client.Database("crash")

	ctx := openTxn(t, client)
	writeEverything(t, ctx, db)
	killed := crashCopy(t, dir)
	require.NoError(t, mongo.SessionFromContext(ctx).AbortTransaction(ctx))
	assert.NoFileExists(t, filepath.Join(dir, journalFileName))

	srv2 := startServer(t, Options{Dir: killed, ReplicaSet: "rs0"})
	db2 := connect(t, srv2.URI()).Database("crash")
	assert.NotEqual(t, before, all(t, db2.Collection("c")))
	assert.Contains(t, collectionNames(t, db2), "fresh")
}

// A clean Close aborts the transactions still open, as mongod's shutdown
// does, and the next start finds nothing to roll back.
func TestJournalCloseAbortsOpenTransactions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := Start(t.Context(), Options{Dir: dir, ReplicaSet: "rs0"})
	require.NoError(t, err)
	client := connect(t, srv.URI())
	db := client.Database("close")
	before := seed(t, db)
	writeEverything(t, openTxn(t, client), db)
	require.NoError(t, srv.Close())
	info, err := os.Stat(filepath.Join(dir, journalFileName))
	require.NoError(t, err)
	assert.Zero(t, info.Size(), "the journal is empty after a clean close")

	var logs logBuffer
	srv2 := startServer(t, Options{Dir: dir, ReplicaSet: "rs0", Logger: logs.logger()})
	db2 := connect(t, srv2.URI()).Database("close")
	assert.Equal(t, before, all(t, db2.Collection("c")))
	assert.Equal(t, []string{"c"}, collectionNames(t, db2))
	assert.NotContains(t, logs.String(), "not clean")
}

// The journal holds records only while a transaction is open, and is
// rewritten with the open transactions' undo alone once it grows past its
// bound.
func TestJournalEmptiesAndCompacts(t *testing.T) {
	t.Parallel()
	dir, srv, client, before := startSeeded(t, Options{}, "compact")
	db := client.Database("compact")
	size := func() int64 {
		info, err := os.Stat(filepath.Join(dir, journalFileName))
		require.NoError(t, err)
		return info.Size()
	}

	ctx := openTxn(t, client)
	_, err := db.Collection("c").UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "x"}}}})
	require.NoError(t, err)
	assert.NotZero(t, size())
	require.NoError(t, mongo.SessionFromContext(ctx).CommitTransaction(ctx))
	assert.Zero(t, size(), "emptied when no transaction is open")

	srv.front.cmd.Lock()
	srv.front.cfg.journal.compactAt = 1
	srv.front.cmd.Unlock()
	ctx = openTxn(t, client)
	for i := range 5 {
		_, err := db.Collection("c").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: i}}}})
		require.NoError(t, err)
		_, err = db.Collection("d").InsertOne(ctx, bson.D{{Key: "_id", Value: i}})
		require.NoError(t, err)
	}
	recs, err := readJournal(filepath.Join(dir, journalFileName))
	require.NoError(t, err)
	require.Len(t, recs, 1, "one record for the open transaction")
	ids, undo := unfinished(recs)
	require.Len(t, ids, 1)
	assert.Len(t, undo[ids[0]][resource{"compact", "c"}].ids, 1)
	assert.Len(t, undo[ids[0]][resource{"compact", "d"}].ids, 5)
	assert.True(t, undo[ids[0]][resource{"compact", "d"}].created)

	killed := crashCopy(t, dir)
	srv2 := startServer(t, Options{Dir: killed, ReplicaSet: "rs0"})
	db2 := connect(t, srv2.URI()).Database("compact")
	want := before
	for _, d := range want {
		d["v"] = "x" // the committed transaction
	}
	assert.Equal(t, want, all(t, db2.Collection("c")))
	assert.Equal(t, []string{"c"}, collectionNames(t, db2))
}

// An aborted transaction leaves no collection that its insert created,
// and drops none that existed.
func TestTransactionAbortDropsCreatedCollection(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{})
	db := client.Database("created")
	before := seed(t, db)
	ctx := openTxn(t, client)
	writeEverything(t, ctx, db)
	require.NoError(t, mongo.SessionFromContext(ctx).AbortTransaction(ctx))
	assert.Equal(t, []string{"c"}, collectionNames(t, db))
	assert.Equal(t, before, all(t, db.Collection("c")))
}

func testRecords(t *testing.T) [][]byte {
	t.Helper()
	pre, err := bson.Marshal(bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "a"}})
	require.NoError(t, err)
	id := func(n int32) bson.RawValue {
		return bson.RawValue{Type: bson.TypeInt32, Value: binary.LittleEndian.AppendUint32(nil, uint32(n))}
	}
	var out [][]byte
	for _, rec := range []*journalRecord{
		{Kind: recordUndo, Txn: 1, Colls: []journalColl{{DB: "d", Coll: "c", Docs: []journalDoc{{ID: id(1), Pre: pre}, {ID: id(2)}}}}},
		{Kind: recordCommit, Txn: 1},
		{Kind: recordUndo, Txn: 2, Colls: []journalColl{{DB: "d", Coll: "c", Created: true, Docs: []journalDoc{{ID: id(3)}}}}},
	} {
		buf, err := encodeRecord(rec)
		require.NoError(t, err)
		out = append(out, buf)
	}
	return out
}

// A last record cut short anywhere, or a tail of zeros, is a record never
// written: the ones before it stand.
func TestJournalTornTail(t *testing.T) {
	t.Parallel()
	recs := testRecords(t)
	whole := bytes.Join(recs, nil)
	path := filepath.Join(t.TempDir(), journalFileName)
	start := len(whole) - len(recs[2])
	for cut := start; cut < len(whole); cut++ {
		require.NoError(t, os.WriteFile(path, whole[:cut], 0o600))
		got, err := readJournal(path)
		require.NoError(t, err, "cut at %d", cut)
		require.Len(t, got, 2, "cut at %d", cut)
	}
	// The last record whole but damaged (written in part, then the kill).
	damaged := bytes.Clone(whole)
	damaged[len(damaged)-2] ^= 0xff
	require.NoError(t, os.WriteFile(path, damaged, 0o600))
	got, err := readJournal(path)
	require.NoError(t, err)
	assert.Len(t, got, 2)

	require.NoError(t, os.WriteFile(path, append(bytes.Clone(whole), make([]byte, 4096)...), 0o600))
	got, err = readJournal(path)
	require.NoError(t, err)
	require.Len(t, got, 3)
	ids, undo := unfinished(got)
	assert.Equal(t, []int64{2}, ids)
	assert.True(t, undo[2][resource{"d", "c"}].created)
}

// Damage before the last record is corruption: a typed error naming the
// file and the record's offset.
func TestJournalCorruption(t *testing.T) {
	t.Parallel()
	recs := testRecords(t)
	path := filepath.Join(t.TempDir(), journalFileName)
	for _, tc := range []struct {
		name   string
		damage func(b []byte)
		offset int
		reason string
	}{
		{"checksum", func(b []byte) { b[len(recs[0])+journalHeaderLen+3] ^= 1 }, len(recs[0]), "checksum mismatch"},
		{"kind", func(b []byte) {
			rec, err := encodeRecord(&journalRecord{Kind: "z", Txn: 1})
			require.NoError(t, err)
			copy(b, rec) // same length as the commit record
		}, 0, `unknown record kind "z"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			if tc.name == "kind" {
				b = bytes.Join([][]byte{recs[1], recs[0], recs[2]}, nil)
			} else {
				b = bytes.Join(recs, nil)
			}
			tc.damage(b)
			require.NoError(t, os.WriteFile(path, b, 0o600))
			_, err := readJournal(path)
			var je *JournalError
			require.ErrorAs(t, err, &je)
			assert.ErrorIs(t, err, ErrJournalCorrupt)
			assert.Equal(t, path, je.Path)
			assert.EqualValues(t, tc.offset, je.Offset)
			assert.Contains(t, je.Reason, tc.reason)
			assert.Contains(t, err.Error(), path)
		})
	}
}

// Start refuses a directory whose journal is corrupt, and applies none of
// it: the unfinished transaction before the damage is not rolled back.
func TestJournalCorruptRefusesStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, Options{Dir: dir, ReplicaSet: "rs0"})
	db := connect(t, srv.URI()).Database("d")
	_, err := db.Collection("c").InsertOne(ctxTimeout(t), bson.D{{Key: "_id", Value: 3}})
	require.NoError(t, err)
	require.NoError(t, srv.Close())

	recs := testRecords(t) // transaction 2 would delete {_id: 3}
	b := bytes.Join([][]byte{recs[2], recs[0], recs[1]}, nil)
	b[len(recs[2])+len(recs[0])-1] ^= 1
	path := filepath.Join(dir, journalFileName)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	_, err = Start(t.Context(), Options{Dir: dir, ReplicaSet: "rs0"})
	var je *JournalError
	require.ErrorAs(t, err, &je)
	assert.EqualValues(t, len(recs[2]), je.Offset)
	assert.True(t, strings.Contains(err.Error(), path))

	b2, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, b, b2, "the journal is kept as it was")
	require.NoError(t, os.Remove(path))
	srv = startServer(t, Options{Dir: dir, ReplicaSet: "rs0"})
	n, err := connect(t, srv.URI()).Database("d").Collection("c").CountDocuments(ctxTimeout(t), bson.D{{Key: "_id", Value: 3}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "nothing of the corrupt journal was applied")
}

// A write command of many statements appends one journal record, not one
// per statement or document, and a crash after it loses all of it.
func TestJournalOneRecordPerCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, Options{Dir: dir, ReplicaSet: "rs0"})
	client := connect(t, srv.URI())
	c := client.Database("bulk").Collection("c")
	docs := make([]any, 20)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i % 3}}
	}
	_, err := c.InsertMany(ctxTimeout(t), docs)
	require.NoError(t, err)
	before := all(t, c)

	ctx := openTxn(t, client)
	var models []mongo.WriteModel // one update command: the driver sends UpdateMany apart
	for i := range 10 {
		models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: i}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "x"}}}}))
	}
	models = append(models,
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "v", Value: 2}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "w", Value: 1}}}}),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "v", Value: "x"}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "y", Value: 1}}}}))
	_, err = c.BulkWrite(ctx, models)
	require.NoError(t, err)
	_, err = c.DeleteMany(ctx, bson.D{{Key: "v", Value: 1}})
	require.NoError(t, err)

	recs, err := readJournal(filepath.Join(dir, journalFileName))
	require.NoError(t, err)
	assert.Len(t, recs, 2, "one record for the bulk update, one for the delete")
	killed := crashCopy(t, dir)
	require.NoError(t, mongo.SessionFromContext(ctx).AbortTransaction(ctx))
	srv2 := startServer(t, Options{Dir: killed, ReplicaSet: "rs0"})
	assert.Equal(t, before, all(t, connect(t, srv2.URI()).Database("bulk").Collection("c")))
}

// BenchmarkJournalAppend measures one synced append of the undo record
// of a command that changes 1,000 documents of about 400 bytes (a
// Publish's update of 1,000 artifacts), the journal's cost per command.
func BenchmarkJournalAppend(b *testing.B) {
	j, err := openJournal(b.TempDir())
	require.NoError(b, err)
	defer func() { _ = j.close() }()
	c := journalColl{DB: "bench", Coll: "model_artifacts"}
	for i := range 1000 {
		pre, err := bson.Marshal(bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: "model"},
			{Key: "path", Value: strings.Repeat("p", 300)}, {Key: "n", Value: i}})
		require.NoError(b, err)
		c.Docs = append(c.Docs, journalDoc{ID: bson.Raw(pre).Lookup("_id"), Pre: pre})
	}
	rec := &journalRecord{Kind: recordUndo, Txn: 1, Colls: []journalColl{c}}
	b.ResetTimer()
	for b.Loop() {
		require.NoError(b, j.append(rec))
		require.NoError(b, j.reset())
	}
}
