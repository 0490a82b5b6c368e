package embedded

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Defaults of the replica-set mode's transactions.
const (
	// TransactionLifetimeDefault is how long a transaction may run before
	// the server aborts it: MongoDB's transactionLifetimeLimitSeconds
	// default.
	TransactionLifetimeDefault = 60 * time.Second
	// TransactionWaitDefault is how long a command waits behind another
	// session's transaction that holds what it needs before that
	// transaction is aborted.
	TransactionWaitDefault = time.Second
)

// resource is what a command reads or writes: a collection, or a whole
// database when coll is empty.
type resource struct{ db, coll string }

func (r resource) conflicts(o resource) bool {
	return r.db == o.db && (r.coll == "" || o.coll == "" || r.coll == o.coll)
}

// resourceOf returns what cmd touches.
func resourceOf(cmd *command) resource {
	return resource{db: cmd.db, coll: cmd.collection()}
}

// txnState is where a session's latest transaction stands.
type txnState int

const (
	txnActive txnState = iota
	txnCommitted
	txnAborted
)

// session is what the front remembers of a logical session (lsid): its
// latest transaction number and that transaction.
type session struct {
	key       string
	txnNumber int64
	txn       *txn
	lastUse   time.Time
	// retry is the reply to the latest retryable write (retry.go).
	retry *retryRecord
}

// txn is one multi-document transaction. Every field is guarded by
// front.cmd.
type txn struct {
	sess   *session
	number int64
	state  txnState
	// why tells a later command why the transaction was aborted.
	why string
	// held lists what the transaction has touched; no other session
	// touches any of it until the transaction ends (strict two-phase
	// locking, one lock per collection).
	held []resource
	// undo holds each document's state before the transaction first
	// wrote it, per collection.
	undo map[resource]*undoLog
	// jid identifies the transaction in the journal; journaled is set
	// once it has an undo record there (see journal.go).
	jid       int64
	journaled bool
	// done is closed when the transaction ends.
	done  chan struct{}
	timer *time.Timer
}

// undoLog is the state of one collection's documents before a
// transaction wrote them.
type undoLog struct {
	ids []bsoncore.Value             // in the order first written
	pre map[string]bsoncore.Document // by idKey; nil: the document did not exist
	// created is set when the collection did not exist before the
	// transaction wrote it: an abort drops it.
	created bool
}

// add records doc (nil: absent) as the state of the document id before
// the transaction, unless an earlier write recorded it already, and
// reports whether it did.
func (u *undoLog) add(id bsoncore.Value, doc bsoncore.Document) bool {
	k := idKey(id)
	if _, ok := u.pre[k]; ok {
		return false
	}
	u.ids = append(u.ids, id)
	u.pre[k] = doc
	return true
}

// has reports whether u holds the state of the document id.
func (u *undoLog) has(id bsoncore.Value) bool {
	_, ok := u.pre[idKey(id)]
	return ok
}

// remember records doc (nil: absent) as the state of the document id
// before the transaction, unless an earlier write recorded it already.
func (t *txn) remember(r resource, id bsoncore.Value, doc bsoncore.Document) {
	if t == nil {
		return
	}
	u := t.undo[r]
	if u == nil {
		u = &undoLog{pre: map[string]bsoncore.Document{}}
		t.undo[r] = u
	}
	u.add(id, doc)
}

func (t *txn) holds(r resource) bool {
	for _, h := range t.held {
		if h.conflicts(r) {
			return true
		}
	}
	return false
}

func (t *txn) take(r resource) {
	for _, h := range t.held {
		if h == r {
			return
		}
	}
	t.held = append(t.held, r)
}

// txnFields are the fields of a command in a transaction, as the driver
// sends them.
type txnFields struct {
	lsid      bsoncore.Document
	number    int64
	inTxn     bool // autocommit: false
	start     bool // startTransaction: true
	hasNumber bool
}

func txnFieldsOf(cmd *command) txnFields {
	var tf txnFields
	tf.lsid, _ = cmd.lookup("lsid").DocumentOK()
	tf.number, tf.hasNumber = cmd.lookup("txnNumber").AsInt64OK()
	if v := cmd.lookup("autocommit"); v.Type == bsoncore.TypeBoolean {
		tf.inTxn = !v.Boolean()
	}
	tf.start = cmd.truthy("startTransaction")
	return tf
}

// sessionKey identifies a session by its lsid's id.
func sessionKey(lsid bsoncore.Document) string {
	if v, err := lsid.LookupErr("id"); err == nil {
		return idKey(v)
	}
	return string(lsid)
}

// notInTxn lists the commands a transaction may run, as MongoDB's
// "Transactions and Operations" page does; any other is refused with
// OperationNotSupportedInTransaction.
var inTxnCommands = map[string]bool{
	"find": true, "getMore": true, "killCursors": true, "aggregate": true, "distinct": true,
	"insert": true, "update": true, "delete": true, "findAndModify": true,
	"create": true, "createIndexes": true,
}

// txnCommand runs cmd, a command of a transaction, holding front.cmd only
// while it runs.
func (f *front) txnCommand(be *backend, cmd *command, tf txnFields) (result, error) {
	if tf.lsid == nil || !tf.hasNumber {
		return result{doc: errorf(codeBadValue, "a command in a transaction needs lsid and txnNumber").doc()}, nil
	}
	key := sessionKey(tf.lsid)
	res := resourceOf(cmd)

	f.cmd.Lock()
	t, cerr := f.txnFor(key, tf)
	if cerr != nil {
		f.cmd.Unlock()
		return result{doc: cerr.doc()}, nil
	}
	if !inTxnCommands[cmd.name] {
		f.abortLocked(t, fmt.Sprintf("command %s is not allowed in a transaction", cmd.name))
		f.cmd.Unlock()
		return result{doc: errorf(codeOperationNotSupportedInTransaction, "Cannot run '%s' in a multi-document transaction.", cmd.name).doc()}, nil
	}
	switch res.db {
	case "admin", "config", "local":
		f.abortLocked(t, "a command on database "+res.db)
		f.cmd.Unlock()
		return result{doc: errorf(codeOperationNotSupportedInTransaction, "Cannot run command against the '%s' database in a transaction.", res.db).doc()}, nil
	}
	f.cmd.Unlock()

	if err := f.acquire(res, t); err != nil {
		return result{}, err
	}
	defer f.cmd.Unlock()
	if t.state != txnActive {
		return result{doc: f.noSuchTxn(t).doc()}, nil
	}
	t.take(res)

	creates := false
	if cmd.name == "create" || cmd.name == "createIndexes" {
		var cerr *cmdError
		var err error
		if creates, cerr, err = f.txnCatalogCheck(be, t, cmd); err != nil || cerr != nil {
			f.abortLocked(t, "a command in it failed")
			if err != nil {
				return result{}, err
			}
			return result{doc: cerr.doc()}, nil
		}
	}
	stripped := *cmd
	stripped.doc, stripped.raw = cmd.without("txnNumber", "autocommit", "startTransaction", "readConcern"), nil
	if creates {
		if err := f.noteCreated(be, t, res); err != nil {
			f.abortLocked(t, "the backend failed")
			return result{}, err
		}
	}
	r, err := f.apply(be, &stripped, t)
	if err == nil {
		var rep bsoncore.Document
		if rep, err = r.body(); err == nil && (!replyOK(rep) || hasWriteErrors(rep)) {
			f.abortLocked(t, "a command in it failed")
		}
	}
	if err != nil {
		f.abortLocked(t, "the backend failed")
		return result{}, err
	}
	return r, nil
}

// txnFor returns the active transaction tf names, starting it when tf
// starts one. The caller holds f.cmd.
func (f *front) txnFor(key string, tf txnFields) (*txn, *cmdError) {
	s := f.sessionFor(key)
	if tf.number < s.txnNumber {
		return nil, errorf(codeTransactionTooOld, "txnNumber %d is less than last txnNumber %d seen in session", tf.number, s.txnNumber)
	}
	if tf.start {
		if tf.number == s.txnNumber {
			return nil, errorf(codeConflictingOperationInProgress, "Cannot start transaction %d on session: it has been started already", tf.number)
		}
		if s.txn != nil && s.txn.state == txnActive {
			f.abortLocked(s.txn, "a newer transaction started on its session")
		}
		t := &txn{sess: s, number: tf.number, undo: map[resource]*undoLog{}, done: make(chan struct{})}
		if j := f.cfg.journal; j != nil {
			t.jid = j.next
			j.next++
		}
		s.txnNumber, s.txn = tf.number, t
		f.active[t] = struct{}{}
		t.timer = time.AfterFunc(f.cfg.txnLifetime, func() {
			f.cmd.Lock()
			defer f.cmd.Unlock()
			if t.state == txnActive {
				f.abortLocked(t, fmt.Sprintf("it exceeded the transaction lifetime limit of %s", f.cfg.txnLifetime))
			}
		})
		return t, nil
	}
	if s.txn == nil || tf.number != s.txnNumber {
		e := errorf(codeNoSuchTransaction, "Given transaction number %d does not match any in-progress transactions. The active transaction number is %d", tf.number, s.txnNumber)
		e.labels = []string{labelTransient}
		return nil, e
	}
	switch s.txn.state {
	case txnCommitted:
		return nil, errorf(codeTransactionCommitted, "Transaction %d has been committed.", tf.number)
	case txnAborted:
		return nil, f.noSuchTxn(s.txn)
	}
	return s.txn, nil
}

// pruneSessions forgets sessions idle for longer than the logical session
// timeout, without a transaction in progress. The caller holds f.cmd.
func (f *front) pruneSessions() {
	if len(f.sessions) < 10_000 {
		return
	}
	cutoff := time.Now().Add(-logicalSessionTimeout)
	for k, s := range f.sessions {
		if s.lastUse.Before(cutoff) && (s.txn == nil || s.txn.state != txnActive) {
			delete(f.sessions, k)
		}
	}
}

// noSuchTxn is the error a command of the aborted transaction t gets.
func (f *front) noSuchTxn(t *txn) *cmdError {
	e := errorf(codeNoSuchTransaction, "Transaction with { txnNumber: %d } has been aborted: %s.", t.number, t.why)
	e.labels = []string{labelTransient}
	return e
}

// acquire waits until no transaction but t (nil for a command outside
// any) holds r, then returns holding f.cmd. A transaction that holds r for
// longer than the wait bound while this command waits is aborted, so that
// nothing waits behind an idle or slow transaction for long.
func (f *front) acquire(r resource, t *txn) error {
	for {
		f.cmd.Lock()
		var blocker *txn
		for a := range f.active {
			if a != t && a.holds(r) {
				blocker = a
				break
			}
		}
		if blocker == nil {
			return nil
		}
		done := blocker.done
		f.cmd.Unlock()

		timer := time.NewTimer(f.cfg.txnWait)
		select {
		case <-done:
			timer.Stop()
		case <-timer.C:
			f.cmd.Lock()
			if blocker.state == txnActive {
				f.abortLocked(blocker, fmt.Sprintf("it held %s for longer than %s while another operation waited (a write conflict)", r, f.cfg.txnWait))
			}
			f.cmd.Unlock()
		case <-f.closing:
			timer.Stop()
			return errFrontClosed
		}
	}
}

func (r resource) String() string {
	if r.coll == "" {
		return "database " + r.db
	}
	return "collection " + r.db + "." + r.coll
}

// commitOrAbort answers commitTransaction and abortTransaction.
func (f *front) commitOrAbort(cmd *command) bsoncore.Document {
	tf := txnFieldsOf(cmd)
	if tf.lsid == nil || !tf.hasNumber {
		return errorf(codeBadValue, "%s needs lsid and txnNumber", cmd.name).doc()
	}
	f.cmd.Lock()
	defer f.cmd.Unlock()
	s := f.sessions[sessionKey(tf.lsid)]
	if s == nil || s.txn == nil || tf.number > s.txnNumber {
		e := errorf(codeNoSuchTransaction, "Given transaction number %d does not match any in-progress transactions.", tf.number)
		e.labels = []string{labelTransient}
		return e.doc()
	}
	if tf.number < s.txnNumber {
		return errorf(codeTransactionTooOld, "txnNumber %d is less than last txnNumber %d seen in session", tf.number, s.txnNumber).doc()
	}
	t := s.txn
	s.lastUse = time.Now()
	if cmd.name == "commitTransaction" {
		switch t.state {
		case txnCommitted:
			return okDoc() // a retried commit
		case txnAborted:
			return f.noSuchTxn(t).doc()
		}
		if err := f.endRecord(t, recordCommit); err != nil {
			f.log.Error("embedded: writing a commit record failed", "err", err)
			f.abortLocked(t, "its commit record could not be written")
			return errorf(codeInternalError, "Transaction %d was aborted: its commit record could not be written: %v", t.number, err).doc()
		}
		f.endLocked(t, txnCommitted)
		f.settleJournal()
		return okDoc()
	}
	switch t.state {
	case txnCommitted:
		return errorf(codeTransactionCommitted, "Transaction %d has been committed.", t.number).doc()
	case txnAborted:
		return f.noSuchTxn(t).doc()
	}
	f.abortLocked(t, "abortTransaction")
	return okDoc()
}

// endSessions aborts the transactions in progress of the sessions cmd
// names and forgets them.
func (f *front) endSessions(cmd *command) bsoncore.Document {
	arr, _ := cmd.lookup(cmd.name).ArrayOK()
	vals, _ := arr.Values()
	f.cmd.Lock()
	defer f.cmd.Unlock()
	for _, v := range vals {
		lsid, ok := v.DocumentOK()
		if !ok {
			continue
		}
		key := sessionKey(lsid)
		if s := f.sessions[key]; s != nil {
			if s.txn != nil && s.txn.state == txnActive {
				f.abortLocked(s.txn, "its session ended")
			}
			delete(f.sessions, key)
		}
	}
	return okDoc()
}

// abortLocked undoes what t wrote and ends it. The caller holds f.cmd.
func (f *front) abortLocked(t *txn, why string) {
	if t.state != txnActive {
		return
	}
	be, err := f.internalBackend()
	if err == nil {
		if err = restoreAll(be, t.undo); err != nil {
			f.dropInternal()
		}
	}
	f.endAborted(t, why, err)
}

// endAborted ends t, whose undo was applied (or failed with undoErr), and
// writes its abort record. The caller holds f.cmd.
func (f *front) endAborted(t *txn, why string, undoErr error) {
	if undoErr != nil {
		// The backend is gone or broken; nothing more can be done here
		// but leave the undo in the journal for the next start.
		f.log.Error("embedded: undoing a transaction failed", "err", undoErr)
	}
	if err := f.forgetCreated(t); err != nil {
		f.log.Error("embedded: forgetting the validators of an aborted transaction's collections failed", "err", err)
	}
	t.why = why
	f.clock.wrote(t.held...) // the undo changed them again
	f.endLocked(t, txnAborted)
	err := undoErr
	if err == nil {
		err = f.endRecord(t, recordAbort)
	}
	if err != nil && f.cfg.journal != nil {
		f.cfg.journal.keep = true
	}
	f.settleJournal()
}

// endLocked ends t in state and lets its waiters in. The caller holds
// f.cmd, and writes t's end record, if any, after.
func (f *front) endLocked(t *txn, state txnState) {
	t.state = state
	t.undo = nil
	t.held = nil
	if t.timer != nil {
		t.timer.Stop()
	}
	delete(f.active, t)
	close(t.done)
}

// idOf returns the _id of doc.
func idOf(doc bsoncore.Document) (bsoncore.Value, bool) {
	v, err := doc.LookupErr("_id")
	return v, err == nil
}

// withID returns doc with an _id, a new ObjectID put first where it had none.
func withID(doc bsoncore.Document) bsoncore.Document {
	if _, ok := idOf(doc); ok {
		return doc
	}
	elems, _ := doc.Elements()
	idx, out := bsoncore.AppendDocumentStart(nil)
	out = bsoncore.AppendObjectIDElement(out, "_id", bson.NewObjectID())
	for _, e := range elems {
		out = append(out, e...)
	}
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out
}
