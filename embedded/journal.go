package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// journalFileName is the undo journal of the replica-set mode's
// transactions, in the data directory.
const journalFileName = "harmonia-txn.journal"

// journalCompactAt is the size past which the journal, while transactions
// are open, is rewritten with the undo records of the open ones alone.
// With no transaction open it is emptied after every commit or abort.
const journalCompactAt = 64 << 20

// journalHeaderLen is the size of a record's header: the payload's length
// and its CRC-32C, uint32 little-endian each.
const journalHeaderLen = 8

// codeInternalError is MongoDB's InternalError, the answer to a commit
// whose commit record could not be written.
const codeInternalError = 1

// Kinds of journal records.
const (
	recordUndo   = "u" // documents' states before a command of the transaction wrote them
	recordCommit = "c" // the transaction committed
	recordAbort  = "a" // the transaction was aborted and its undo applied
)

// ErrJournalCorrupt is wrapped by the [*JournalError] that [Start]
// returns when the transaction journal of the data directory is corrupt.
var ErrJournalCorrupt = errors.New("embedded: transaction journal is corrupt")

// JournalError reports a corrupt record in the transaction journal of a
// data directory (see "Durability and crash recovery" in the package
// documentation). [Start] applies none of the journal and refuses to
// start. errors.Is(err, ErrJournalCorrupt) holds.
type JournalError struct {
	// Path is the journal file.
	Path string
	// Offset is the byte offset of the corrupt record in the file.
	Offset int64
	// Reason says what is wrong with the record.
	Reason string
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("embedded: transaction journal %s is corrupt at offset %d: %s; nothing of it was applied. "+
		"Unfinished transactions in it cannot be rolled back: restore the directory from a backup, or remove the file "+
		"to start with whatever part of them reached storage", e.Path, e.Offset, e.Reason)
}

// Unwrap returns [ErrJournalCorrupt].
func (e *JournalError) Unwrap() error { return ErrJournalCorrupt }

// journalRecord is one record of the journal.
type journalRecord struct {
	Kind  string        `bson:"k"`
	Txn   int64         `bson:"t"`
	Colls []journalColl `bson:"c,omitempty"`
}

// journalColl is what one undo record holds of a collection.
type journalColl struct {
	DB      string       `bson:"db"`
	Coll    string       `bson:"coll"`
	Created bool         `bson:"created,omitempty"` // the transaction created the collection
	Docs    []journalDoc `bson:"docs"`
}

// journalDoc is a document's state before the transaction wrote it.
type journalDoc struct {
	ID  bson.RawValue `bson:"_id"`
	Pre bson.Raw      `bson:"pre,omitempty"` // absent: the document did not exist
}

// journal is the open journal file. It is used with front.cmd held.
type journal struct {
	path string
	file *os.File
	size int64
	// keep is set once a transaction ended without its end record (its
	// undo or the record failed): the file is then never emptied, so that
	// the next start rolls that transaction back.
	keep bool
	next int64 // the id of the next transaction
	// compactAt is the size past which the journal is compacted:
	// journalCompactAt, lower in tests.
	compactAt int64
}

// encodeRecord returns rec with its header.
func encodeRecord(rec *journalRecord) ([]byte, error) {
	payload, err := bson.Marshal(rec)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, journalHeaderLen, journalHeaderLen+len(payload))
	binary.LittleEndian.PutUint32(buf[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(payload, castagnoli))
	return append(buf, payload...), nil
}

// append writes rec at the end of the journal and waits until it is on
// stable storage.
func (j *journal) append(rec *journalRecord) error {
	buf, err := encodeRecord(rec)
	if err != nil {
		return fmt.Errorf("embedded: journal: %w", err)
	}
	if _, err := j.file.WriteAt(buf, j.size); err != nil {
		_ = j.file.Truncate(j.size)
		return fmt.Errorf("embedded: journal: %w", err)
	}
	if err := j.file.Sync(); err != nil {
		return fmt.Errorf("embedded: journal: %w", err)
	}
	j.size += int64(len(buf))
	return nil
}

// reset empties the journal.
func (j *journal) reset() error {
	if j.size == 0 || j.keep {
		return nil
	}
	if err := j.file.Truncate(0); err != nil {
		return fmt.Errorf("embedded: journal: %w", err)
	}
	j.size = 0
	return nil
}

// rewrite replaces the journal with recs, through a new file renamed over
// it, so that a crash leaves either the old journal or the new one.
func (j *journal) rewrite(recs []*journalRecord) error {
	tmp := j.path + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("embedded: journal: %w", err)
	}
	var size int64
	for _, rec := range recs {
		buf, err := encodeRecord(rec)
		if err == nil {
			_, err = f.Write(buf)
		}
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("embedded: journal: %w", err)
		}
		size += int64(len(buf))
	}
	if err := errors.Join(f.Sync(), os.Rename(tmp, j.path), syncDir(filepath.Dir(j.path))); err != nil {
		_ = f.Close()
		return fmt.Errorf("embedded: journal: %w", err)
	}
	_ = j.file.Close()
	j.file, j.size = f, size
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// close closes the journal file.
func (j *journal) close() error { return j.file.Close() }

// readJournal returns the records of the journal at path, none when it
// does not exist. A last record cut short (a crash while it was being
// written; its command never ran) is left out. Any other damage is a
// *JournalError.
func readJournal(path string) ([]*journalRecord, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: journal: %w", err)
	}
	var recs []*journalRecord
	for off := 0; off < len(data); {
		rest := data[off:]
		corrupt := func(format string, args ...any) error {
			return &JournalError{Path: path, Offset: int64(off), Reason: fmt.Sprintf(format, args...)}
		}
		if len(bytes.Trim(rest, "\x00")) == 0 {
			break // zeros to the end: a tail the system extended but never wrote
		}
		if len(rest) < journalHeaderLen {
			break // torn header
		}
		n := int(binary.LittleEndian.Uint32(rest[0:4]))
		if n > len(rest)-journalHeaderLen {
			break // torn payload
		}
		payload := rest[journalHeaderLen : journalHeaderLen+n]
		last := journalHeaderLen+n == len(rest)
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(rest[4:8]) {
			if last {
				break // the last record, written in part
			}
			return nil, corrupt("checksum mismatch in a record of %d bytes that is not the last", n)
		}
		var rec journalRecord
		if err := bson.Unmarshal(payload, &rec); err != nil {
			return nil, corrupt("undecodable record: %v", err)
		}
		if err := rec.check(); err != nil {
			return nil, corrupt("%v", err)
		}
		recs = append(recs, &rec)
		off += journalHeaderLen + n
	}
	return recs, nil
}

// check reports a record that is well-formed BSON but not a journal record.
func (r *journalRecord) check() error {
	switch r.Kind {
	case recordCommit, recordAbort:
		return nil
	case recordUndo:
	default:
		return fmt.Errorf("unknown record kind %q", r.Kind)
	}
	for _, c := range r.Colls {
		if c.DB == "" || c.Coll == "" {
			return errors.New("an undo record names no collection")
		}
		for _, d := range c.Docs {
			if d.ID.Type == 0 {
				return fmt.Errorf("an undo record of %s.%s has a document without _id", c.DB, c.Coll)
			}
			if d.Pre != nil && d.Pre.Validate() != nil {
				return fmt.Errorf("an undo record of %s.%s has a malformed document", c.DB, c.Coll)
			}
		}
	}
	return nil
}

// unfinished returns, from recs, the undo of each transaction that has
// neither a commit nor an abort record, latest transaction first: the
// order to roll them back in.
func unfinished(recs []*journalRecord) (ids []int64, undo map[int64]map[resource]*undoLog) {
	undo = map[int64]map[resource]*undoLog{}
	ended := map[int64]bool{}
	for _, rec := range recs {
		switch rec.Kind {
		case recordCommit, recordAbort:
			ended[rec.Txn] = true
			continue
		}
		u := undo[rec.Txn]
		if u == nil {
			u = map[resource]*undoLog{}
			undo[rec.Txn] = u
			ids = append(ids, rec.Txn)
		}
		for _, c := range rec.Colls {
			r := resource{c.DB, c.Coll}
			l := u[r]
			if l == nil {
				l = &undoLog{pre: map[string]bsoncore.Document{}}
				u[r] = l
			}
			l.created = l.created || c.Created
			for _, d := range c.Docs {
				l.add(bsoncore.Value{Type: bsoncore.Type(d.ID.Type), Data: d.ID.Value}, bsoncore.Document(d.Pre))
			}
		}
	}
	ids = slices.DeleteFunc(ids, func(id int64) bool { return ended[id] })
	slices.Reverse(ids)
	return ids, undo
}

// recoverJournal rolls back, through a backend connection from dial,
// every transaction the journal in dir left unfinished, logs what it did,
// and leaves the journal empty. It applies nothing when the journal is
// corrupt.
func recoverJournal(dir string, dial func() (net.Conn, error), log *slog.Logger) error {
	path := filepath.Join(dir, journalFileName)
	recs, err := readJournal(path)
	if err != nil {
		return err
	}
	ids, undo := unfinished(recs)
	if len(ids) > 0 {
		c, err := dial()
		if err != nil {
			return fmt.Errorf("embedded: journal: %w", err)
		}
		defer func() { _ = c.Close() }()
		be := newBackend(c)
		docs := map[string]int{}
		var dropped []string
		for _, id := range ids {
			for r, l := range undo[id] {
				docs[r.db+"."+r.coll] += len(l.ids)
				if l.created {
					dropped = append(dropped, r.db+"."+r.coll)
				}
			}
			if err := restoreAll(be, undo[id]); err != nil {
				return fmt.Errorf("embedded: roll back transactions left unfinished in %s: %w", path, err)
			}
		}
		slices.Sort(dropped)
		log.Warn("embedded: the last shutdown was not clean; rolled back the transactions it left unfinished",
			"journal", path, "transactions", len(ids), "documents", docs, "dropped_collections", dropped)
	}
	if err := os.Truncate(path, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("embedded: journal: %w", err)
	}
	return nil
}

// startJournal rolls back what a journal in dataDir left unfinished,
// through a backend connection from dial, before the front serves anyone,
// and opens the journal when opts call for one: the replica-set mode in a
// named Dir, unless NoJournal. A temporary directory is never restarted
// on, so it needs none.
func startJournal(opts Options, dataDir string, dial func() (net.Conn, error), log *slog.Logger) (*journal, error) {
	if opts.Dir == "" {
		return nil, nil
	}
	if err := recoverJournal(dataDir, dial, log); err != nil {
		return nil, err
	}
	if opts.ReplicaSet == "" || opts.NoJournal {
		return nil, nil
	}
	return openJournal(dataDir)
}

// openJournal opens the (empty, recovered) journal in dir for appending.
func openJournal(dir string) (*journal, error) {
	path := filepath.Join(dir, journalFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded: journal: %w", err)
	}
	if err := errors.Join(f.Truncate(0), f.Sync()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("embedded: journal: %w", err)
	}
	return &journal{path: path, file: f, next: 1, compactAt: journalCompactAt}, nil
}

// restoreAll puts back every document of undo and drops the collections
// the transaction created.
func restoreAll(be *backend, undo map[resource]*undoLog) error {
	for r, u := range undo {
		if err := be.restore(r.db, r.coll, u.ids, u.pre); err != nil {
			return err
		}
		if u.created {
			if err := be.drop(r.db, r.coll); err != nil {
				return err
			}
		}
	}
	return nil
}

// touch readies t's undo log of r before t first writes r: whether r
// exists yet, so that an abort drops a collection that t created.
func (f *front) touch(be *backend, t *txn, r resource) error {
	if t.undo[r] != nil {
		return nil
	}
	exists, err := be.collectionExists(r.db, r.coll)
	if err != nil {
		return err
	}
	t.undo[r] = &undoLog{pre: map[string]bsoncore.Document{}, created: !exists}
	return nil
}

// journaling reports whether w's writes go to the journal first.
func (w *writer) journaling() bool { return w.t != nil && w.f.cfg.journal != nil }

// logUndo records, before w's next write reaches storage, the state of
// the documents it may change that its transaction has not recorded yet:
// pre, as they are, and absent, ids with no document. It appends them to
// the journal as one record; without a journal it only remembers them.
func (w *writer) logUndo(pre []bsoncore.Document, absent []bsoncore.Value) error {
	if w.t == nil {
		return nil
	}
	u := w.t.undo[w.res]
	c := journalColl{DB: w.res.db, Coll: w.res.coll, Created: u.created}
	add := func(id bsoncore.Value, doc bsoncore.Document) {
		if u.add(id, doc) {
			c.Docs = append(c.Docs, journalDoc{ID: rawValue(id), Pre: bson.Raw(doc)})
		}
	}
	for _, d := range pre {
		id, _ := idOf(d)
		add(id, d)
	}
	for _, id := range absent {
		add(id, nil)
	}
	j := w.f.cfg.journal
	if j == nil || len(c.Docs) == 0 {
		return nil
	}
	if err := j.append(&journalRecord{Kind: recordUndo, Txn: w.t.jid, Colls: []journalColl{c}}); err != nil {
		return err
	}
	w.t.journaled = true
	return w.f.compactJournal()
}

// logStatements journals, before an update or delete command of several
// statements (in the array key) runs, every document that any of them may
// change, so that the command appends one record rather than one per
// statement: the document each _id-equality filter names, and all that
// any other filter matches now. A document that a statement matches only
// after an earlier statement of the command changed it was recorded
// through that earlier statement; an upsert's new _id is still journaled
// by its own statement.
func (w *writer) logStatements(key string) error {
	stmts := w.statements(key)
	if !w.journaling() || len(stmts) < 2 {
		return nil
	}
	var ids []bsoncore.Value
	var pre []bsoncore.Document
	for _, stmt := range stmts {
		q, _ := stmt.Lookup("q").DocumentOK()
		if id, ok := idEquality(q); ok {
			ids = append(ids, id)
			continue
		}
		docs, err := w.be.find(w.res.db, w.res.coll, q, bsoncore.Value{}, 0)
		if err != nil {
			return err
		}
		pre = append(pre, docs...)
	}
	if len(ids) > 0 {
		docs, err := w.be.find(w.res.db, w.res.coll, idsFilter(ids), bsoncore.Value{}, 0)
		if err != nil {
			return err
		}
		pre = append(pre, docs...)
	}
	return w.logUndo(pre, nil)
}

// logInsert records, before an insert of docs in w's transaction, the
// state of their ids: absent, or the document that holds the id already
// (whose insert will fail; an undo must not delete it).
func (w *writer) logInsert(docs []bsoncore.Document) error {
	if !w.journaling() {
		return nil
	}
	u := w.t.undo[w.res]
	var ids []bsoncore.Value
	for _, d := range docs {
		if id, _ := idOf(d); !u.has(id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	existing, err := w.be.find(w.res.db, w.res.coll, idsFilter(ids), bsoncore.Value{}, 0)
	if err != nil {
		return err
	}
	return w.logUndo(existing, ids) // logUndo keeps the first state of an id: existing ones win
}

// pinUpsert gives an upsert that is about to insert (its filter q matched
// nothing) a known _id when the journal needs one before the write: the
// one q names, or the one update u sets, or a new ObjectID that it adds
// to u. It returns the id and u as it must be sent; ok is false when u is
// neither an operator update nor a replacement.
func pinUpsert(q bsoncore.Document, u bsoncore.Value) (id bsoncore.Value, out bsoncore.Value, ok bool) {
	if id, ok := idEquality(q); ok {
		return id, u, true
	}
	if v, err := q.LookupErr("_id", "$eq"); err == nil {
		return v, u, true
	}
	doc, isDoc := u.DocumentOK()
	if !isDoc {
		return bsoncore.Value{}, u, false
	}
	elems, _ := doc.Elements()
	if len(elems) == 0 || elems[0].Key()[0] != '$' {
		doc = withID(doc)
		id, _ := idOf(doc)
		return id, bsoncore.Value{Type: bsoncore.TypeEmbeddedDocument, Data: doc}, true
	}
	for _, op := range []string{"$set", "$setOnInsert"} {
		if v, err := doc.LookupErr(op, "_id"); err == nil {
			return v, u, true
		}
	}
	newID := bson.NewObjectID()
	id = bsoncore.Value{Type: bsoncore.TypeObjectID, Data: bsoncore.AppendObjectID(nil, newID)}
	set := bson.D{{Key: "_id", Value: newID}}
	if soi, ok := doc.Lookup("$setOnInsert").DocumentOK(); ok {
		others, _ := soi.Elements()
		for _, e := range others {
			set = append(set, bson.E{Key: e.Key(), Value: rawValue(e.Value())})
		}
	}
	doc = editDoc(doc, nil, bson.D{{Key: "$setOnInsert", Value: set}})
	return id, bsoncore.Value{Type: bsoncore.TypeEmbeddedDocument, Data: doc}, true
}

// pinStatementUpsert applies pinUpsert to an update statement (field q,
// the update in u) that found nothing to update, when it upserts and the
// writer journals. It returns the statement to run and the id it will
// insert, if any.
func (w *writer) pinStatementUpsert(stmt bsoncore.Document, qKey, uKey string, upsert bool) (bsoncore.Document, []bsoncore.Value) {
	if !w.journaling() || !upsert {
		return stmt, nil
	}
	q, _ := stmt.Lookup(qKey).DocumentOK()
	id, u, ok := pinUpsert(q, stmt.Lookup(uKey))
	if !ok {
		// Journaled after the write instead (see rememberAll): a crash
		// between the two leaves the upserted document.
		return stmt, nil
	}
	return editDoc(stmt, nil, bson.D{{Key: uKey, Value: rawValue(u)}}), []bsoncore.Value{id}
}

// endRecord appends t's commit or abort record, when t has undo records.
func (f *front) endRecord(t *txn, kind string) error {
	j := f.cfg.journal
	if j == nil || !t.journaled {
		return nil
	}
	return j.append(&journalRecord{Kind: kind, Txn: t.jid})
}

// settleJournal empties the journal when no transaction is open. The
// caller holds f.cmd.
func (f *front) settleJournal() {
	j := f.cfg.journal
	if j == nil || len(f.active) > 0 {
		return
	}
	if err := j.reset(); err != nil {
		f.log.Error("embedded: emptying the transaction journal failed", "err", err)
	}
}

// compactJournal rewrites a journal grown past journalCompactAt with one
// undo record per open transaction. The caller holds f.cmd.
func (f *front) compactJournal() error {
	j := f.cfg.journal
	if j.size < j.compactAt || j.keep {
		return nil
	}
	var recs []*journalRecord
	for t := range f.active {
		rec := &journalRecord{Kind: recordUndo, Txn: t.jid}
		for r, u := range t.undo {
			c := journalColl{DB: r.db, Coll: r.coll, Created: u.created, Docs: []journalDoc{}}
			for _, id := range u.ids {
				c.Docs = append(c.Docs, journalDoc{ID: rawValue(id), Pre: bson.Raw(u.pre[idKey(id)])})
			}
			rec.Colls = append(rec.Colls, c)
		}
		if len(rec.Colls) > 0 {
			recs = append(recs, rec)
		}
	}
	return j.rewrite(recs)
}

// abortOnClose aborts the transactions still open when the front closes,
// as mongod does on a clean shutdown, through a connection of its own (the
// front's are closed by now). The caller holds f.cmd.
func (f *front) abortOnClose() {
	if len(f.active) == 0 {
		return
	}
	c, err := f.dial()
	if err != nil {
		f.log.Error("embedded: cannot abort the open transactions on close", "err", err)
		return
	}
	defer func() { _ = c.Close() }()
	be := newBackend(c)
	for t := range f.active {
		f.endAborted(t, "the server closed", restoreAll(be, t.undo))
	}
}

// drop drops db.coll; a collection that is gone already is no error.
func (b *backend) drop(db, coll string) error {
	rep, err := b.run(docOf(bson.D{{Key: "drop", Value: coll}, {Key: "$db", Value: db}}))
	if err != nil {
		return err
	}
	if code, _ := rep.Lookup("code").AsInt64OK(); !replyOK(rep) && code != codeNamespaceNotFound {
		return fmt.Errorf("embedded: backend refused drop: %s", rep)
	}
	return nil
}

// collectionExists reports whether db.coll exists.
func (b *backend) collectionExists(db, coll string) (bool, error) {
	rep, err := b.runOK(docOf(bson.D{{Key: "listCollections", Value: 1},
		{Key: "filter", Value: bson.D{{Key: "name", Value: coll}}}, {Key: "nameOnly", Value: true}, {Key: "$db", Value: db}}))
	if err != nil {
		return false, err
	}
	batch, _ := rep.Lookup("cursor", "firstBatch").ArrayOK()
	vals, _ := batch.Values()
	return len(vals) > 0, nil
}
