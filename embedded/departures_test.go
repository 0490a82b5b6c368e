package embedded

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestKillSessions: killSessions aborts the transactions of the sessions
// it names (their writes are undone, their next command gets
// NoSuchTransaction); killAllSessions does so for every session.
func TestKillSessions(t *testing.T) {
	t.Parallel()
	srv, client := startReplSet(t, Options{})
	w := newWireClient(t, srv)
	coll := client.Database("kill").Collection("c")
	start := func(lsid bson.D, id int) {
		rep := w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: id}}}},
			{Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: int64(1)}, {Key: "startTransaction", Value: true},
			{Key: "autocommit", Value: false}, {Key: "$db", Value: "kill"}})
		require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
	}
	commit := func(lsid bson.D) bson.Raw {
		return w.run(bson.D{{Key: "commitTransaction", Value: 1}, {Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: int64(1)},
			{Key: "autocommit", Value: false}, {Key: "$db", Value: "admin"}})
	}
	for _, kill := range []string{"killSessions", "killAllSessions"} {
		a, b := newLsid(), newLsid()
		start(a, 1)
		arg := bson.A{}
		if kill == "killSessions" {
			arg = bson.A{a}
		}
		rep := w.run(bson.D{{Key: kill, Value: arg}, {Key: "$db", Value: "admin"}})
		require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
		// The commit comes first: a read of the collection would wait
		// behind the transaction and abort it itself.
		rep = commit(a)
		assert.EqualValues(t, codeNoSuchTransaction, i32(rep.Lookup("code")), rep.String())
		assert.Empty(t, all(t, coll), "%s undid the transaction's insert", kill)
		if kill == "killSessions" {
			start(b, 2)
			require.Equal(t, 1.0, commit(b).Lookup("ok").Double(), "a session it does not name goes on")
			_, err := coll.DeleteMany(ctxTimeout(t), bson.D{})
			require.NoError(t, err)
		}
	}
}

// TestUpsertedIndex: a multi-statement update reports, for each upsert,
// the index of its statement, on both modes.
func TestUpsertedIndex(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, srv *Server) {
		w := newWireClient(t, srv)
		w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 0}}}}, {Key: "$db", Value: "ups"}})
		var updates bson.A
		for i := range 5 {
			updates = append(updates, bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: i * 2}}},
				{Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: i}}}}}, {Key: "upsert", Value: i%2 == 0}})
		}
		rep := w.run(bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: updates}, {Key: "$db", Value: "ups"}})
		var r struct {
			N        int
			Upserted []struct {
				Index int
				ID    int `bson:"_id"`
			}
		}
		require.NoError(t, bson.Unmarshal(rep, &r), rep.String())
		require.Len(t, r.Upserted, 2, rep.String())
		assert.Equal(t, 2, r.Upserted[0].Index)
		assert.Equal(t, 4, r.Upserted[0].ID)
		assert.Equal(t, 4, r.Upserted[1].Index)
		assert.Equal(t, 8, r.Upserted[1].ID)
		assert.Equal(t, 3, r.N)
	})
}

// TestUnsatisfiableWriteConcern: w above the set's one member, or a mode
// the set does not define, is a writeConcernError (100 and 79) on the
// reply of a write that is done, as mongod answers.
func TestUnsatisfiableWriteConcern(t *testing.T) {
	t.Parallel()
	srv, client := startReplSet(t, Options{})
	w := newWireClient(t, srv)
	rep := w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}},
		{Key: "writeConcern", Value: bson.D{{Key: "w", Value: 2}}}, {Key: "$db", Value: "wc"}})
	require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
	assert.EqualValues(t, codeUnsatisfiableWriteConcern, i32(rep.Lookup("writeConcernError", "code")), rep.String())
	assert.Equal(t, "UnsatisfiableWriteConcern", str(rep.Lookup("writeConcernError", "codeName")))
	assert.EqualValues(t, 2, i32(rep.Lookup("writeConcernError", "errInfo", "writeConcern", "w")))
	assert.Len(t, all(t, client.Database("wc").Collection("c")), 1, "the write is done")

	rep = w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 2}}}},
		{Key: "writeConcern", Value: bson.D{{Key: "w", Value: "dc"}}}, {Key: "$db", Value: "wc"}})
	assert.EqualValues(t, codeUnknownReplWriteConcern, i32(rep.Lookup("writeConcernError", "code")), rep.String())

	for _, ok := range []any{1, "majority", 0} {
		rep = w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{}}},
			{Key: "writeConcern", Value: bson.D{{Key: "w", Value: ok}}}, {Key: "$db", Value: "wc"}})
		assert.Equal(t, bson.RawValue{}, rep.Lookup("writeConcernError"), "w: %v: %s", ok, rep)
	}
}

// TestFindAndModifyFields: findAndModify returns its document projected
// by fields, inclusion or exclusion, on both modes.
func TestFindAndModifyFields(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, srv *Server) {
		w := newWireClient(t, srv)
		w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{
			bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: bson.D{{Key: "x", Value: 1}, {Key: "y", Value: 2}}}, {Key: "c", Value: 3}},
		}}, {Key: "$db", Value: "fam"}})
		fam := func(fields bson.D) bson.Raw {
			rep := w.run(bson.D{{Key: "findAndModify", Value: "c"}, {Key: "query", Value: bson.D{{Key: "_id", Value: 1}}},
				{Key: "update", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "c", Value: 1}}}}}, {Key: "new", Value: true},
				{Key: "fields", Value: fields}, {Key: "$db", Value: "fam"}})
			require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
			return rep.Lookup("value").Document()
		}
		var got bson.D
		require.NoError(t, bson.Unmarshal(fam(bson.D{{Key: "a", Value: 1}, {Key: "b.y", Value: 1}}), &got))
		assert.Equal(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: int32(1)}, {Key: "b", Value: bson.D{{Key: "y", Value: int32(2)}}}}, got)
		got = nil
		require.NoError(t, bson.Unmarshal(fam(bson.D{{Key: "_id", Value: 0}, {Key: "b", Value: 0}}), &got))
		assert.Equal(t, bson.D{{Key: "a", Value: int32(1)}, {Key: "c", Value: int32(5)}}, got)

		rep := w.run(bson.D{{Key: "findAndModify", Value: "c"}, {Key: "query", Value: bson.D{}}, {Key: "remove", Value: true},
			{Key: "fields", Value: bson.D{{Key: "a", Value: 1}, {Key: "c", Value: 0}}}, {Key: "$db", Value: "fam"}})
		assert.EqualValues(t, codeProjectionMix, i32(rep.Lookup("code")), rep.String())
	})
}

// TestCreateInTransaction: create, and createIndexes on a new collection,
// run in a transaction (MongoDB 4.4+); an abort drops what they created, a
// commit keeps it; create of an existing collection is NamespaceExists
// (48) and createIndexes on one that existed before is
// OperationNotSupportedInTransaction (263).
func TestCreateInTransaction(t *testing.T) {
	t.Parallel()
	srv, client := startReplSet(t, Options{})
	w := newWireClient(t, srv)
	db := client.Database("ddl")
	names := func() []string {
		n, err := db.ListCollectionNames(ctxTimeout(t), bson.D{})
		require.NoError(t, err)
		return n
	}
	var txn int64
	lsid := newLsid()
	inTxn := func(cmd bson.D, start bool) bson.Raw {
		cmd = append(cmd, bson.E{Key: "lsid", Value: lsid}, bson.E{Key: "txnNumber", Value: txn}, bson.E{Key: "autocommit", Value: false})
		if start {
			cmd = append(cmd, bson.E{Key: "startTransaction", Value: true})
		}
		return w.run(append(cmd, bson.E{Key: "$db", Value: "ddl"}))
	}
	end := func(name string) bson.Raw {
		return w.run(bson.D{{Key: name, Value: 1}, {Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: txn},
			{Key: "autocommit", Value: false}, {Key: "$db", Value: "admin"}})
	}
	index := bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "k", Value: 1}}}, {Key: "name", Value: "k_1"}}}

	txn++
	rep := inTxn(bson.D{{Key: "create", Value: "a"}}, true)
	require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
	rep = inTxn(bson.D{{Key: "createIndexes", Value: "b"}, {Key: "indexes", Value: index}}, false)
	require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
	rep = inTxn(bson.D{{Key: "insert", Value: "a"}, {Key: "documents", Value: bson.A{bson.D{{Key: "x", Value: 1}}}}}, false)
	require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
	require.Equal(t, 1.0, end("abortTransaction").Lookup("ok").Double())
	assert.Empty(t, names(), "the abort dropped what the transaction created")

	txn++
	require.Equal(t, 1.0, inTxn(bson.D{{Key: "create", Value: "a"}}, true).Lookup("ok").Double())
	rep = inTxn(bson.D{{Key: "createIndexes", Value: "a"}, {Key: "indexes", Value: index}}, false)
	require.Equal(t, 1.0, rep.Lookup("ok").Double(), "indexes on a collection the transaction created: %s", rep)
	require.Equal(t, 1.0, end("commitTransaction").Lookup("ok").Double())
	assert.Equal(t, []string{"a"}, names())

	txn++
	rep = inTxn(bson.D{{Key: "create", Value: "a"}}, true)
	assert.EqualValues(t, codeNamespaceExists, i32(rep.Lookup("code")), rep.String())
	txn++
	rep = inTxn(bson.D{{Key: "createIndexes", Value: "a"}, {Key: "indexes", Value: bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "j", Value: 1}}}, {Key: "name", Value: "j_1"}}}}}, true)
	assert.EqualValues(t, codeOperationNotSupportedInTransaction, i32(rep.Lookup("code")), rep.String())
	assert.Equal(t, []string{"a"}, names(), "the failed transactions dropped nothing that was there")
}
