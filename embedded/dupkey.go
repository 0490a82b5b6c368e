package embedded

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// FerretDB v1's duplicate key errors say only "E11000 duplicate key error
// collection: db.coll"; mongod's also name the index's key pattern and the
// duplicate value (keyPattern, keyValue), which drivers expose
// (mongo.WriteError.Raw, the spec tests' expectError). The front finds
// them for an insert: it reads the collection's unique indexes and looks
// for the document that holds the inserted document's key under each.

// needsDupKeyInfo reports whether rep has a duplicate key error without
// keyPattern.
func needsDupKeyInfo(rep bsoncore.Document) bool {
	lacks := func(d bsoncore.Document) bool {
		code, _ := d.Lookup("code").AsInt32OK()
		_, err := d.LookupErr("keyPattern")
		return code == codeDuplicateKey && err != nil
	}
	if !replyOK(rep) {
		return lacks(rep)
	}
	arr, _ := rep.Lookup("writeErrors").ArrayOK()
	vals, _ := arr.Values()
	for _, v := range vals {
		if d, ok := v.DocumentOK(); ok && lacks(d) {
			return true
		}
	}
	return false
}

// withDupKeyInfo returns rep, the reply to the insert cmd, with keyPattern
// and keyValue on each duplicate key error in writeErrors that lacks them
// and whose clash it finds.
func (f *front) withDupKeyInfo(cmd *command, rep bsoncore.Document) bsoncore.Document {
	if cmd.name != "insert" || !needsDupKeyInfo(rep) {
		return rep
	}
	f.cmd.Lock()
	defer f.cmd.Unlock()
	be, err := f.internalBackend()
	if err != nil {
		return rep
	}
	r := resourceOf(cmd)
	keys, err := uniqueKeys(be, r)
	if err != nil {
		f.dropInternal()
		return rep
	}
	arr, _ := cmd.lookup("documents").ArrayOK()
	docs, _ := arr.Values()
	errs, _ := rep.Lookup("writeErrors").ArrayOK()
	vals, _ := errs.Values()
	out := make(bson.A, 0, len(vals))
	for _, v := range vals {
		e, _ := v.DocumentOK()
		i, _ := e.Lookup("index").AsInt64OK()
		code, _ := e.Lookup("code").AsInt32OK()
		if code == codeDuplicateKey && i >= 0 && int(i) < len(docs) {
			if d, ok := docs[i].DocumentOK(); ok {
				if pattern, value, ok := findClash(be, r, keys, d); ok {
					e = editDoc(e, nil, bson.D{{Key: "keyPattern", Value: bson.Raw(pattern)}, {Key: "keyValue", Value: value}})
				}
			}
		}
		out = append(out, bson.Raw(e))
	}
	return editDoc(rep, nil, bson.D{{Key: "writeErrors", Value: out}})
}

// uniqueKeys returns the key patterns of r's unique indexes, _id's first.
func uniqueKeys(be *backend, r resource) ([]bsoncore.Document, error) {
	rep, err := be.runOK(docOf(bson.D{{Key: "listIndexes", Value: r.coll}, {Key: "$db", Value: r.db}}))
	if err != nil {
		return nil, err
	}
	keys := []bsoncore.Document{docOf(bson.D{{Key: "_id", Value: int32(1)}})}
	cur, _ := rep.Lookup("cursor").DocumentOK()
	batch, _ := cur.Lookup("firstBatch").ArrayOK()
	vals, _ := batch.Values()
	for _, v := range vals {
		ix, _ := v.DocumentOK()
		key, ok := ix.Lookup("key").DocumentOK()
		if ok && truthy(ix.Lookup("unique")) {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// findClash returns the first of keys under which another document of r
// holds doc's key, with doc's values of that key.
func findClash(be *backend, r resource, keys []bsoncore.Document, doc bsoncore.Document) (bsoncore.Document, bson.D, bool) {
	for _, key := range keys {
		elems, _ := key.Elements()
		var value, filter bson.D
		for _, e := range elems {
			v, err := doc.LookupErr(e.Key())
			var val any = nil
			if err == nil {
				val = rawValue(v)
			}
			value = append(value, bson.E{Key: e.Key(), Value: val})
			filter = append(filter, bson.E{Key: e.Key(), Value: val})
		}
		if id, ok := idOf(doc); ok && len(elems) > 0 && elems[0].Key() != "_id" {
			filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$ne", Value: rawValue(id)}}})
		}
		found, err := be.find(r.db, r.coll, docOf(filter), bsoncore.Value{}, 1)
		if err == nil && len(found) > 0 {
			return key, value, true
		}
	}
	return nil, nil, false
}
