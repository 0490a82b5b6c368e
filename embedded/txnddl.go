package embedded

// Collections a transaction creates (MongoDB 4.4 and later allow create,
// and createIndexes on a new collection, in a transaction) are dropped
// again when it aborts: they are marked created in its undo log, as a
// collection its first insert creates is (see journal.go).

// noteCreated marks r as created by t before the command that creates it
// runs, and journals the mark, so that an abort, or the next start after
// a crash, drops r. The caller holds f.cmd.
func (f *front) noteCreated(be *backend, t *txn, r resource) error {
	if err := f.touch(be, t, r); err != nil {
		return err
	}
	t.undo[r].created = true
	j := f.cfg.journal
	if j == nil {
		return nil
	}
	rec := &journalRecord{Kind: recordUndo, Txn: t.jid, Colls: []journalColl{{DB: r.db, Coll: r.coll, Created: true}}}
	if err := j.append(rec); err != nil {
		return err
	}
	t.journaled = true
	return nil
}

// txnCatalogCheck decides create and createIndexes in the transaction t,
// as mongod 4.4 does: create of an existing collection is NamespaceExists
// (48); createIndexes on a collection that existed before t is
// OperationNotSupportedInTransaction (263). It reports whether the
// command creates the collection.
func (f *front) txnCatalogCheck(be *backend, t *txn, cmd *command) (bool, *cmdError, error) {
	r := resourceOf(cmd)
	exists, err := be.collectionExists(r.db, r.coll)
	if err != nil {
		return false, nil, err
	}
	switch {
	case cmd.name == "create" && exists:
		return false, errorf(codeNamespaceExists, "Collection %s.%s already exists.", r.db, r.coll), nil
	case cmd.name == "createIndexes" && exists:
		if u := t.undo[r]; u != nil && u.created {
			return false, nil, nil
		}
		return false, errorf(codeOperationNotSupportedInTransaction,
			"Cannot create new indexes on existing collection %s.%s in a multi-document transaction.", r.db, r.coll), nil
	}
	return !exists, nil, nil
}

// forgetCreated forgets the validators of the collections t created,
// which its undo dropped. The caller holds f.cmd.
func (f *front) forgetCreated(t *txn) error {
	return f.validators.update(func(m map[resource]*collValidator) {
		for r, u := range t.undo {
			if u.created {
				delete(m, r)
			}
		}
	})
}
