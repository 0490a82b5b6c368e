package embedded

import (
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Collections a transaction creates (MongoDB 4.4 and later allow create,
// and createIndexes on a new collection, in a transaction) are dropped
// again when it aborts.

// noteCreated records that t created the collection r.
func (t *txn) noteCreated(r resource) {
	for _, c := range t.createdColls {
		if c == r {
			return
		}
	}
	t.createdColls = append(t.createdColls, r)
}

// collectionExists reports whether the collection r exists (false where
// the backend refuses to list it, for a bad name).
func collectionExists(be *backend, r resource) (bool, error) {
	if r.coll == "" {
		return false, nil
	}
	rep, err := be.run(docOf(bson.D{{Key: "listCollections", Value: 1},
		{Key: "filter", Value: bson.D{{Key: "name", Value: r.coll}}}, {Key: "nameOnly", Value: true}, {Key: "$db", Value: r.db}}))
	if err != nil {
		return false, err
	}
	cur, _ := rep.Lookup("cursor").DocumentOK()
	batch, _ := cur.Lookup("firstBatch").ArrayOK()
	vals, _ := batch.Values()
	return len(vals) > 0, nil
}

// txnCatalogCheck decides create and createIndexes in the transaction t,
// as mongod 4.4 does: create of an existing collection is NamespaceExists
// (48); createIndexes on a collection that existed before t is
// OperationNotSupportedInTransaction (263). It reports whether the
// command creates the collection.
func (f *front) txnCatalogCheck(be *backend, t *txn, cmd *command) (bool, *cmdError, error) {
	r := resourceOf(cmd)
	exists, err := collectionExists(be, r)
	if err != nil {
		return false, nil, err
	}
	switch {
	case cmd.name == "create" && exists:
		return false, errorf(codeNamespaceExists, "Collection %s.%s already exists.", r.db, r.coll), nil
	case cmd.name == "createIndexes" && exists:
		for _, c := range t.createdColls {
			if c == r {
				return false, nil, nil
			}
		}
		return false, errorf(codeOperationNotSupportedInTransaction,
			"Cannot create new indexes on existing collection %s.%s in a multi-document transaction.", r.db, r.coll), nil
	}
	return !exists, nil, nil
}

// dropCreated drops the collections t created, after its undo emptied
// them. The caller holds f.cmd.
func (f *front) dropCreated(t *txn) error {
	if len(t.createdColls) == 0 {
		return nil
	}
	be, err := f.internalBackend()
	if err != nil {
		return err
	}
	for _, r := range t.createdColls {
		if _, err := be.run(docOf(bson.D{{Key: "drop", Value: r.coll}, {Key: "$db", Value: r.db}})); err != nil {
			f.dropInternal()
			return err
		}
	}
	return f.validators.update(func(m map[resource]*collValidator) {
		for _, r := range t.createdColls {
			delete(m, r)
		}
	})
}
