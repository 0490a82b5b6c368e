package embedded

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// An update of many documents named by _id, {_id: {$in: [...]}} with
// multi (a publish marks its artifacts so), costs FerretDB a scan of the
// whole collection to find them, on top of the front's own read of the
// documents as they were. Once the front has read them, it knows every
// document the statement can change, and runs the statement pinned to
// each of them, {_id: id} without multi, which FerretDB looks up by
// index (see idindex.go): one scan fewer, in commands of at most
// maxWriteBatch statements.

// pinnableMany reports whether stmt is an update of many documents whose
// filter is exactly {_id: {$in: [...]}}, without upsert, collation,
// arrayFilters or hint.
func pinnableMany(stmt bsoncore.Document) bool {
	if !truthy(stmt.Lookup("multi")) || truthy(stmt.Lookup("upsert")) {
		return false
	}
	for _, k := range []string{"collation", "arrayFilters", "hint"} {
		if stmt.Lookup(k).Type != 0 {
			return false
		}
	}
	q, ok := stmt.Lookup("q").DocumentOK()
	if !ok {
		return false
	}
	elems, err := q.Elements()
	if err != nil || len(elems) != 1 || elems[0].Key() != "_id" {
		return false
	}
	ops, ok := elems[0].Value().DocumentOK()
	if !ok {
		return false
	}
	opElems, err := ops.Elements()
	return err == nil && len(opElems) == 1 && opElems[0].Key() == "$in"
}

// updatePinned runs the update statement stmt on each document of pre
// (the documents its filter matched, as read before), pinned to its _id,
// and returns a reply as the statement's own would be: n and nModified
// summed, or the first write error.
//
// It records pre in the transaction's undo record first: a write error in
// a later command leaves the earlier ones applied, and the transaction,
// which the error aborts, must undo them.
func (w *writer) updatePinned(stmt bsoncore.Document, pre []bsoncore.Document) (bsoncore.Document, error) {
	w.rememberAll(pre, nil)
	var n, nModified int64
	for start := 0; start < len(pre); start += maxWriteBatch {
		chunk := pre[start:min(start+maxWriteBatch, len(pre))]
		stmts := make(bson.A, len(chunk))
		for i, d := range chunk {
			id, _ := idOf(d)
			stmts[i] = bson.Raw(editDoc(stmt, []string{"multi"}, bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: rawValue(id)}}}}))
		}
		rep, err := w.be.run(editDoc(w.cmd.doc, nil, bson.D{{Key: "updates", Value: stmts}, {Key: "ordered", Value: true}}))
		if err != nil || !replyOK(rep) || firstWriteError(rep) != nil {
			return rep, err
		}
		got, _ := rep.Lookup("n").AsInt64OK()
		mod, _ := rep.Lookup("nModified").AsInt64OK()
		n, nModified = n+got, nModified+mod
	}
	return bsoncore.NewDocumentBuilder().AppendInt64("n", n).AppendInt64("nModified", nModified).AppendDouble("ok", 1).Build(), nil
}
