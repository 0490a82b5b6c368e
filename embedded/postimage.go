package embedded

import (
	"bytes"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// A write to a collection with a validator is checked on the documents
// as written, which the front reads back after the statement: for an
// update of many documents by _id, one more scan of the collection. For
// the simplest updates, a $set of top-level fields and an $addToSet of
// one value to a top-level array (a publish's marks are exactly that),
// the front computes the documents as written from the documents as they
// were, which it has read already, instead.

// postImages returns the documents pre become under the update statement
// stmt, or nil when stmt is not one postImages computes: anything but
// $set and $addToSet, a field with a dot or a $, an $addToSet of $each or
// of a value other than a string, an ObjectId or a boolean, or onto a
// field that is not an array. A value already in the array is not added
// again; a document the update leaves as it was is returned unchanged.
func postImages(stmt bsoncore.Document, pre []bsoncore.Document) []bsoncore.Document {
	u, ok := stmt.Lookup("u").DocumentOK()
	if !ok || len(pre) == 0 {
		return nil
	}
	ops, err := u.Elements()
	if err != nil || len(ops) == 0 {
		return nil
	}
	var set, add []bsoncore.Element
	for _, op := range ops {
		fields, ok := op.Value().DocumentOK()
		if !ok {
			return nil
		}
		elems, err := fields.Elements()
		if err != nil {
			return nil
		}
		for _, e := range elems {
			if strings.ContainsAny(e.Key(), ".$") || e.Key() == "_id" {
				return nil
			}
		}
		switch op.Key() {
		case "$set":
			set = append(set, elems...)
		case "$addToSet":
			for _, e := range elems {
				switch e.Value().Type {
				case bsoncore.TypeString, bsoncore.TypeObjectID, bsoncore.TypeBoolean:
				default:
					return nil
				}
			}
			add = append(add, elems...)
		default:
			return nil
		}
	}
	post := make([]bsoncore.Document, len(pre))
	for i, d := range pre {
		if post[i] = applySimple(d, set, add); post[i] == nil {
			return nil
		}
	}
	return post
}

// applySimple returns d with set and add applied, d itself when they
// change nothing, or nil when it cannot (an $addToSet onto a field that
// is there and not an array, or a field both $set and $addToSet).
func applySimple(d bsoncore.Document, set, add []bsoncore.Element) bsoncore.Document {
	newVal := map[string]bsoncore.Value{}
	var order []string
	for _, e := range set {
		if _, dup := newVal[e.Key()]; !dup {
			order = append(order, e.Key())
		}
		newVal[e.Key()] = e.Value()
	}
	for _, e := range add {
		if _, dup := newVal[e.Key()]; dup {
			return nil
		}
		cur, err := d.LookupErr(e.Key())
		var arr bsoncore.Array
		switch {
		case err != nil:
		case cur.Type == bsoncore.TypeArray:
			arr = cur.Array()
		default:
			return nil
		}
		vals, _ := arr.Values()
		have := false
		for _, v := range vals {
			if v.Type == e.Value().Type && bytes.Equal(v.Data, e.Value().Data) {
				have = true
				break
			}
		}
		if have && err == nil {
			continue
		}
		aidx, out := bsoncore.AppendArrayStart(nil)
		for j, v := range vals {
			out = bsoncore.AppendValueElement(out, strconv.Itoa(j), v)
		}
		out = bsoncore.AppendValueElement(out, strconv.Itoa(len(vals)), e.Value())
		out, _ = bsoncore.AppendArrayEnd(out, aidx)
		order = append(order, e.Key())
		newVal[e.Key()] = bsoncore.Value{Type: bsoncore.TypeArray, Data: out}
	}
	changed := false
	var edit bson.D
	for _, k := range order {
		v := newVal[k]
		if cur, err := d.LookupErr(k); err == nil && cur.Type == v.Type && bytes.Equal(cur.Data, v.Data) {
			continue
		}
		changed = true
		edit = append(edit, bson.E{Key: k, Value: rawValue(v)})
	}
	if !changed {
		return d
	}
	return editDoc(d, nil, edit)
}

// knownPost returns the documents as the update statement stmt wrote
// them, computed (postImages), where the front can: a validator applies,
// nothing was upserted, and pre are exactly the documents stmt matched
// (read with its own filter, and as many as the reply rep says it
// matched). Otherwise nil: checkWritten reads them back.
func (w *writer) knownPost(stmt bsoncore.Document, pre []bsoncore.Document, rep bsoncore.Document, upserted []bsoncore.Value) []bsoncore.Document {
	if w.v == nil || len(upserted) > 0 {
		return nil
	}
	q, _ := stmt.Lookup("q").DocumentOK()
	if _, ok := idEquality(q); ok {
		return nil // read by _id alone: it may not match the rest of q
	}
	if n, _ := rep.Lookup("n").AsInt64OK(); n != int64(len(pre)) {
		return nil
	}
	return postImages(stmt, pre)
}
