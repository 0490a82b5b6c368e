package embedded

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// apply runs cmd in the backend. The caller holds f.cmd, so nothing else
// runs meanwhile. t is cmd's transaction, nil outside one.
//
// Writes to a collection with a validator, and writes in a transaction,
// run one statement at a time: the front reads the documents a statement
// will change before it runs (the undo record of a transaction, the
// former state to restore when a document fails validation), and where a
// validator applies, the documents as written after it.
func (f *front) apply(be *backend, cmd *command, t *txn) (result, error) {
	f.indexIDs(f.ids.before, cmd)
	defer f.indexIDs(f.ids.after, cmd)
	doc, err := f.applyDoc(be, cmd, t)
	if err == errPassThrough {
		replies, err := be.send(cmd.request())
		return result{raw: replies}, err
	}
	return result{doc: doc}, err
}

// result is a command's reply: the backend's replies as they came (raw),
// or a document the front made.
type result struct {
	raw [][]byte
	doc bsoncore.Document
}

// body returns the reply document.
func (r result) body() (bsoncore.Document, error) {
	if r.doc != nil {
		return r.doc, nil
	}
	return replyBody(r.raw[0])
}

// errPassThrough tells apply to forward the command unchanged.
var errPassThrough = errors.New("pass through")

// request returns the command's request to forward: the client's own
// bytes when the front has not changed it.
func (c *command) request() []byte {
	if c.raw != nil {
		return c.raw
	}
	return encodeRequest(c.doc, c.requestID)
}

func (f *front) applyDoc(be *backend, cmd *command, t *txn) (bsoncore.Document, error) {
	switch cmd.name {
	case "insert", "update", "delete", "findAndModify":
		v := f.validators.get(cmd.db, cmd.collection())
		if cmd.truthy("bypassDocumentValidation") {
			v = nil
		}
		if t == nil && v == nil && !hasPinned(cmd) && !needsWriter(cmd) {
			return nil, errPassThrough
		}
		w := &writer{f: f, be: be, cmd: cmd, t: t, v: v, res: resourceOf(cmd)}
		if t != nil {
			if err := f.touch(be, t, w.res); err != nil {
				return nil, err
			}
		}
		switch cmd.name {
		case "insert":
			return w.insert()
		case "update":
			return w.update()
		case "delete":
			return w.delete()
		default:
			return w.findAndModify()
		}
	case "create":
		return f.create(be, cmd)
	case "collMod":
		return f.collMod(be, cmd)
	case "drop", "dropDatabase", "renameCollection":
		return f.dropOrRename(be, cmd)
	case "listCollections":
		if !f.validators.any(cmd.db) {
			return nil, errPassThrough
		}
		rep, err := be.run(cmd.doc)
		if err != nil {
			return nil, err
		}
		return f.validators.annotate(cmd.db, rep), nil
	}
	return nil, errPassThrough
}

// writer runs one write command statement by statement.
type writer struct {
	f   *front
	be  *backend
	cmd *command
	t   *txn
	v   *collValidator
	res resource
}

// ordered reports the command's ordered option (default true).
func (w *writer) ordered() bool {
	v := w.cmd.lookup("ordered")
	return v.Type == 0 || truthy(v)
}

// statements returns the documents of the array field key.
func (w *writer) statements(key string) []bsoncore.Document {
	arr, _ := w.cmd.lookup(key).ArrayOK()
	vals, _ := arr.Values()
	docs := make([]bsoncore.Document, 0, len(vals))
	for _, v := range vals {
		d, _ := v.DocumentOK()
		docs = append(docs, d)
	}
	return docs
}

// single returns the command with its statement array replaced by one
// statement.
func (w *writer) single(key string, stmt bsoncore.Document) bsoncore.Document {
	return editDoc(w.cmd.doc, []string{"ordered"}, bson.D{{Key: key, Value: bson.A{bson.Raw(stmt)}}})
}

// writeResult gathers a write command's reply over its statements.
type writeResult struct {
	n, nModified int64
	upserted     bson.A
	writeErrors  bson.A
	hasModified  bool
}

func (r *writeResult) failed(index int, errDoc bsoncore.Document) {
	d := bson.D{{Key: "index", Value: int32(index)}}
	elems, _ := errDoc.Elements()
	for _, e := range elems {
		if e.Key() != "index" {
			d = append(d, bson.E{Key: e.Key(), Value: rawValue(e.Value())})
		}
	}
	r.writeErrors = append(r.writeErrors, d)
}

func (r *writeResult) doc() bsoncore.Document {
	d := bson.D{{Key: "n", Value: int32(r.n)}}
	if r.hasModified {
		d = append(d, bson.E{Key: "nModified", Value: int32(r.nModified)})
	}
	if len(r.upserted) > 0 {
		d = append(d, bson.E{Key: "upserted", Value: r.upserted})
	}
	if len(r.writeErrors) > 0 {
		d = append(d, bson.E{Key: "writeErrors", Value: r.writeErrors})
	}
	return docOf(append(d, bson.E{Key: "ok", Value: 1.0}))
}

// validationError returns the writeError (or, for findAndModify, the
// command error) of a document that failed validation.
func validationError(id bsoncore.Value, why *schemaViolation) *cmdError {
	e := errorf(codeDocumentValidationFailure, "Document failed validation")
	e.extra = bson.D{{Key: "errInfo", Value: bson.D{
		{Key: "failingDocumentId", Value: rawValue(id)},
		{Key: "details", Value: bson.Raw(why.details())},
	}}}
	return e
}

// writeErrorDoc is e as a writeErrors entry (without its index).
func writeErrorDoc(e *cmdError) bsoncore.Document {
	d := bson.D{{Key: "code", Value: e.code}, {Key: "errmsg", Value: e.msg}}
	return docOf(append(d, e.extra...))
}

// insert checks each document against the validator, sends those that
// pass, and records what it inserted in the transaction's undo record.
func (w *writer) insert() (bsoncore.Document, error) {
	docs := w.statements("documents")
	ordered := w.ordered()
	var res writeResult
	var send []bsoncore.Document
	var sendIdx []int
	for i, d := range docs {
		d = withID(d)
		if why := w.v.check(d); why != nil {
			id, _ := idOf(d)
			if w.v.warn() {
				w.f.log.Warn("embedded: document failed validation", "ns", w.res.db+"."+w.res.coll, "reasons", why.Reasons)
			} else {
				res.failed(i, writeErrorDoc(validationError(id, why)))
				if ordered {
					break
				}
				continue
			}
		}
		send = append(send, d)
		sendIdx = append(sendIdx, i)
	}
	if len(send) > 0 {
		arr := make(bson.A, len(send))
		for i, d := range send {
			arr[i] = bson.Raw(d)
		}
		if err := w.logInsert(send); err != nil {
			return nil, err
		}
		doc := editDoc(w.cmd.doc, nil, bson.D{{Key: "documents", Value: arr}})
		rep, err := w.be.run(doc)
		if err != nil {
			return nil, err
		}
		if !replyOK(rep) {
			return rep, nil
		}
		n, _ := rep.Lookup("n").AsInt64OK()
		res.n = n
		failed := map[int]bool{}
		firstFail := len(send)
		if arr, ok := rep.Lookup("writeErrors").ArrayOK(); ok {
			vals, _ := arr.Values()
			var backendErrs []bsoncore.Document
			for _, v := range vals {
				e, _ := v.DocumentOK()
				i, _ := e.Lookup("index").AsInt64OK()
				failed[int(i)] = true
				firstFail = min(firstFail, int(i))
				backendErrs = append(backendErrs, e)
			}
			for _, e := range backendErrs {
				i, _ := e.Lookup("index").AsInt64OK()
				res.failed(sendIdx[i], e)
			}
		}
		for i, d := range send {
			if failed[i] || (ordered && i > firstFail) {
				continue
			}
			id, _ := idOf(d)
			w.t.remember(w.res, id, nil)
		}
		if ordered && firstFail < len(send) {
			// The backend stopped at an earlier document than the
			// validator would have: only its error stands.
			res.writeErrors = keepBelow(res.writeErrors, sendIdx[firstFail]+1)
		}
	}
	sortWriteErrors(res.writeErrors)
	return res.doc(), nil
}

// keepBelow returns the write errors whose index is below n.
func keepBelow(errs bson.A, n int) bson.A {
	var out bson.A
	for _, e := range errs {
		if int(e.(bson.D)[0].Value.(int32)) < n {
			out = append(out, e)
		}
	}
	return out
}

func sortWriteErrors(errs bson.A) {
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].(bson.D)[0].Value.(int32) < errs[j-1].(bson.D)[0].Value.(int32); j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

// update runs each update statement on its own.
func (w *writer) update() (bsoncore.Document, error) {
	res := writeResult{hasModified: true}
	if err := w.logStatements("updates"); err != nil {
		return nil, err
	}
	for i, stmt := range w.statements("updates") {
		limit := int64(1)
		if truthy(stmt.Lookup("multi")) {
			limit = 0
		}
		pre, rep, err := w.runStatement("updates", stmt, limit)
		if err != nil || !replyOK(rep) {
			return rep, err
		}
		var upserted []bsoncore.Value
		if arr, ok := rep.Lookup("upserted").ArrayOK(); ok {
			vals, _ := arr.Values()
			for _, v := range vals {
				if d, ok := v.DocumentOK(); ok {
					upserted = append(upserted, d.Lookup("_id"))
				}
			}
		}
		if e := firstWriteError(rep); e != nil {
			res.failed(i, e)
			if w.ordered() {
				break
			}
			continue
		}
		if verr, err := w.checkWritten(pre, upserted, w.knownPost(stmt, pre, rep, upserted)); err != nil {
			return nil, err
		} else if verr != nil {
			res.failed(i, writeErrorDoc(verr))
			if w.ordered() {
				break
			}
			continue
		}
		if err := w.rememberAll(pre, upserted); err != nil {
			return nil, err
		}
		n, _ := rep.Lookup("n").AsInt64OK()
		nm, _ := rep.Lookup("nModified").AsInt64OK()
		res.n += n
		res.nModified += nm
		for _, id := range upserted {
			res.upserted = append(res.upserted, bson.D{{Key: "index", Value: int32(i)}, {Key: "_id", Value: rawValue(id)}})
		}
	}
	return res.doc(), nil
}

// runStatement reads the documents the update or delete statement stmt
// will change (at most limit; 0: all), pins a single-document statement to
// the one it found, and runs the statement alone.
func (w *writer) runStatement(key string, stmt bsoncore.Document, limit int64) ([]bsoncore.Document, bsoncore.Document, error) {
	q, _ := stmt.Lookup("q").DocumentOK()
	if id, ok := idEquality(q); ok {
		// At most the document with that _id can change: read it by
		// _id alone, which FerretDB looks up without a scan. It may not
		// match the rest of q; then the statement leaves it as it was,
		// and restoring it would change nothing.
		pre, err := w.be.find(w.res.db, w.res.coll, idsFilter([]bsoncore.Value{id}), bsoncore.Value{}, 0)
		if err != nil {
			return nil, nil, err
		}
		if pinnedStatement(stmt, q) {
			// See match.go: decide the other conditions here, and run
			// the statement pinned to {_id}, or not at all.
			match, known := false, true
			if len(pre) > 0 {
				match, known = matchScalars(pre[0], q)
			}
			switch {
			case known && !match:
				return nil, noMatchReply(), nil
			case known:
				stmt = editDoc(stmt, nil, bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: rawValue(id)}}}})
			}
		}
		rep, err := w.runLogged(key, stmt, pre)
		return pre, rep, err
	}
	if w.t == nil && w.v == nil {
		// The writer runs this command only for its pinned statements:
		// this one has nothing to remember or check.
		rep, err := w.be.run(w.single(key, stmt))
		return nil, rep, err
	}
	pre, err := w.be.find(w.res.db, w.res.coll, q, bsoncore.Value{}, limit)
	if err != nil {
		return nil, nil, err
	}
	if key == "updates" && pinnableMany(stmt) {
		rep, err := w.updatePinned(stmt, pre) // pinmany.go
		return pre, rep, err
	}
	if limit == 1 && len(pre) == 1 {
		id, _ := idOf(pre[0])
		stmt = editDoc(stmt, nil, bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: rawValue(id)}}}})
	}
	rep, err := w.runLogged(key, stmt, pre)
	return pre, rep, err
}

// runLogged runs the update or delete statement stmt alone, after
// recording in the transaction's undo the documents it may change: pre,
// and the document it upserts when pre is empty.
func (w *writer) runLogged(key string, stmt bsoncore.Document, pre []bsoncore.Document) (bsoncore.Document, error) {
	var upsert []bsoncore.Value
	if len(pre) == 0 && key == "updates" {
		stmt, upsert = w.pinStatementUpsert(stmt, "q", "u", truthy(stmt.Lookup("upsert")))
	}
	if err := w.logUndo(pre, upsert); err != nil {
		return nil, err
	}
	return w.be.run(w.single(key, stmt))
}

// noMatchReply is the reply of a statement that matched no document.
func noMatchReply() bsoncore.Document {
	return bsoncore.NewDocumentBuilder().AppendInt32("n", 0).AppendInt32("nModified", 0).AppendDouble("ok", 1).Build()
}

// hasPinned reports whether cmd, which needs no statement-by-statement
// run of its own, has an update or delete statement for the pinned path
// of match.go, which the writer runs.
func hasPinned(cmd *command) bool {
	switch cmd.name {
	case "update":
		return anyPinned(cmd, "updates")
	case "delete":
		return anyPinned(cmd, "deletes")
	}
	return false
}

// idEquality returns the value q requires _id to equal, if it does: a
// top-level _id that is not an operator document such as {$in: …}.
func idEquality(q bsoncore.Document) (bsoncore.Value, bool) {
	v, err := q.LookupErr("_id")
	if err != nil {
		return v, false
	}
	if d, ok := v.DocumentOK(); ok {
		if first, err := d.IndexErr(0); err == nil && strings.HasPrefix(first.Key(), "$") {
			return v, false
		}
	}
	return v, true
}

// firstWriteError returns the first writeErrors entry of rep, or nil.
func firstWriteError(rep bsoncore.Document) bsoncore.Document {
	errs, _ := rep.Lookup("writeErrors").ArrayOK()
	vals, _ := errs.Values()
	if len(vals) == 0 {
		return nil
	}
	e, _ := vals[0].DocumentOK()
	return e
}

// delete runs each delete statement on its own.
func (w *writer) delete() (bsoncore.Document, error) {
	var res writeResult
	if err := w.logStatements("deletes"); err != nil {
		return nil, err
	}
	for i, stmt := range w.statements("deletes") {
		limit, _ := stmt.Lookup("limit").AsInt64OK()
		pre, rep, err := w.runStatement("deletes", stmt, limit)
		if err != nil || !replyOK(rep) {
			return rep, err
		}
		if e := firstWriteError(rep); e != nil {
			res.failed(i, e)
			if w.ordered() {
				break
			}
			continue
		}
		if err := w.rememberAll(pre, nil); err != nil {
			return nil, err
		}
		n, _ := rep.Lookup("n").AsInt64OK()
		res.n += n
	}
	return res.doc(), nil
}

// findAndModify runs the command so that the front learns the document
// as it was: asked for it (new: false) where the command projects no
// fields, else by pinning the document first (the first that matches its
// query in its sort order) and running the command on it alone. It then
// checks the document as written.
func (w *writer) findAndModify() (bsoncore.Document, error) {
	remove := w.cmd.truthy("remove")
	fields, hasFields := w.cmd.lookup("fields").DocumentOK()
	// The journal needs the document before the write: pin it first.
	if hasFields || remove || w.journaling() {
		var proj *projection
		if hasFields {
			var cerr *cmdError
			if proj, cerr = parseProjection(fields); cerr != nil {
				return cerr.doc(), nil
			}
		}
		return w.findAndModifyPinned(remove, proj)
	}
	wantNew := w.cmd.truthy("new")
	rep, err := w.be.run(editDoc(w.cmd.doc, nil, bson.D{{Key: "new", Value: false}}))
	if err != nil || !replyOK(rep) {
		return rep, err
	}
	var pre []bsoncore.Document
	if d, ok := rep.Lookup("value").DocumentOK(); ok {
		pre = append(pre, d)
	}
	upserted := upsertedID(rep)
	verr, err := w.checkWritten(pre, upserted, nil)
	if err != nil || verr != nil {
		return verr.docOrNil(), err
	}
	if err := w.rememberAll(pre, upserted); err != nil {
		return nil, err
	}
	if !wantNew {
		return rep, nil
	}
	var ids []bsoncore.Value
	for _, d := range pre {
		id, _ := idOf(d)
		ids = append(ids, id)
	}
	ids = append(ids, upserted...)
	var value any = nil
	if len(ids) == 1 {
		post, err := w.be.find(w.res.db, w.res.coll, idsFilter(ids), bsoncore.Value{}, 1)
		if err != nil {
			return nil, err
		}
		if len(post) == 1 {
			value = bson.Raw(post[0])
		}
	}
	return editDoc(rep, nil, bson.D{{Key: "value", Value: value}}), nil
}

// findAndModifyPinned runs findAndModify on the document it will change,
// found first.
func (w *writer) findAndModifyPinned(remove bool, proj *projection) (bsoncore.Document, error) {
	q, _ := w.cmd.lookup("query").DocumentOK()
	pre, err := w.be.find(w.res.db, w.res.coll, q, w.cmd.lookup("sort"), 1)
	if err != nil {
		return nil, err
	}
	doc := w.cmd.without("fields") // FerretDB v1 refuses it; proj applies it below
	var upsert []bsoncore.Value
	if len(pre) == 1 {
		id, _ := idOf(pre[0])
		doc = editDoc(doc, nil, bson.D{{Key: "query", Value: bson.D{{Key: "_id", Value: rawValue(id)}}}})
	} else if !remove {
		doc, upsert = w.pinStatementUpsert(doc, "query", "update", w.cmd.truthy("upsert"))
	}
	if err := w.logUndo(pre, upsert); err != nil {
		return nil, err
	}
	rep, err := w.be.run(doc)
	if err != nil || !replyOK(rep) {
		return rep, err
	}
	upserted := upsertedID(rep)
	if !remove {
		verr, err := w.checkWritten(pre, upserted, nil)
		if err != nil || verr != nil {
			return verr.docOrNil(), err
		}
	}
	if err := w.rememberAll(pre, upserted); err != nil {
		return nil, err
	}
	return proj.applyToValue(rep), nil
}

// upsertedID returns the _id a findAndModify reply says it upserted.
func upsertedID(rep bsoncore.Document) []bsoncore.Value {
	if leo, ok := rep.Lookup("lastErrorObject").DocumentOK(); ok {
		if id, err := leo.LookupErr("upserted"); err == nil {
			return []bsoncore.Value{id}
		}
	}
	return nil
}

// docOrNil returns e's reply document, or nil for a nil e.
func (e *cmdError) docOrNil() bsoncore.Document {
	if e == nil {
		return nil
	}
	return e.doc()
}

// rememberAll records pre (the documents as they were) and upserted (new
// documents) in the transaction's undo record, after the write: all of
// them without a journal, which records them before it (logUndo), and
// any it could not know before (an upsert pinUpsert could not pin).
func (w *writer) rememberAll(pre []bsoncore.Document, upserted []bsoncore.Value) error {
	return w.logUndo(pre, upserted)
}

// checkWritten reads back the documents a statement may have changed
// (pre, as they were, and upserted ones), unless post has them already
// (postimage.go), and checks the changed ones against the validator. When
// one fails, it puts all of them back as they were and returns the
// validation error.
func (w *writer) checkWritten(pre []bsoncore.Document, upserted []bsoncore.Value, post []bsoncore.Document) (*cmdError, error) {
	if w.v == nil || (len(pre) == 0 && len(upserted) == 0) {
		return nil, nil
	}
	before := map[string]bsoncore.Document{}
	ids := make([]bsoncore.Value, 0, len(pre)+len(upserted))
	for _, d := range pre {
		id, _ := idOf(d)
		before[idKey(id)] = d
		ids = append(ids, id)
	}
	for _, id := range upserted {
		before[idKey(id)] = nil
		ids = append(ids, id)
	}
	if post == nil {
		var err error
		if post, err = w.be.find(w.res.db, w.res.coll, idsFilter(ids), bsoncore.Value{}, 0); err != nil {
			return nil, err
		}
	}
	for _, d := range post {
		id, _ := idOf(d)
		old := before[idKey(id)]
		if old != nil && bytes.Equal(old, d) {
			continue // not changed by this statement
		}
		if old != nil && w.v.level == "moderate" && w.v.check(old) != nil {
			continue // moderate: documents invalid before are not checked
		}
		why := w.v.check(d)
		if why == nil {
			continue
		}
		if w.v.warn() {
			w.f.log.Warn("embedded: document failed validation", "ns", w.res.db+"."+w.res.coll, "reasons", why.Reasons)
			continue
		}
		if err := w.be.restore(w.res.db, w.res.coll, ids, before); err != nil {
			return nil, fmt.Errorf("embedded: restore after a failed validation: %w", err)
		}
		return validationError(id, why), nil
	}
	return nil, nil
}
