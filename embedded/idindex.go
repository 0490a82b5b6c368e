package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", FerretDB's own
)

// FerretDB v1.24.2 (SQLite) keeps each collection in a table of one JSON
// column, _ferretdb_sjson, and creates its _id index on the expression
// _ferretdb_sjson->"_id". Its own lookups by _id (a find whose filter is
// {_id: v}, and every document an update or a delete writes, one
// statement per document) say _ferretdb_sjson->'$._id' instead, which
// SQLite does not take for the same expression: each of them scans the
// table, parsing every document's JSON. An updateMany of 1,000 documents
// among 10,000 parsed 10 million documents (a CLI publish of 100
// artifacts ran past the 60 s transaction lifetime).
//
// So the front adds, to each collection's table, an index on the very
// expression those lookups use. It opens the database file beside
// FerretDB (SQLite serializes the two connections; the front holds its
// command lock, so FerretDB is not writing meanwhile), once per
// collection and process: before a command on a collection it has not
// indexed yet, and after one that may have created it. The index is
// SQLite's alone: FerretDB's listIndexes does not show it, and dropping
// the collection drops it with the table.

// idIndexName is the suffix of the index the front adds to a table.
const idIndexName = "_harmonia_sjson_id"

// idIndexer adds the _id index FerretDB's lookups can use to the tables
// of one data directory. Every method is called with front.cmd held.
type idIndexer struct {
	dir  string // the data directory; "" disables the indexer
	done map[resource]bool
	// missing holds collections found not to exist: before skips them
	// (a look into SQLite per command would slow every command on them),
	// after looks again once a command may have created them.
	missing map[resource]bool
}

func newIDIndexer(dir string) *idIndexer {
	return &idIndexer{dir: dir, done: map[resource]bool{}, missing: map[resource]bool{}}
}

// forget drops what the indexer knows of the collections for which drop
// is true.
func (x *idIndexer) forget(drop func(resource) bool) {
	for _, m := range []map[resource]bool{x.done, x.missing} {
		for r := range m {
			if drop(r) {
				delete(m, r)
			}
		}
	}
}

// before readies cmd's collection: it forgets collections that cmd drops
// or renames and indexes cmd's collection when its table exists.
func (x *idIndexer) before(cmd *command) error {
	if x == nil || x.dir == "" {
		return nil
	}
	switch cmd.name {
	case "drop":
		dropped := resourceOf(cmd)
		x.forget(func(r resource) bool { return r == dropped })
		return nil
	case "dropDatabase", "renameCollection":
		db := cmd.db
		if cmd.name == "renameCollection" {
			db, _, _ = strings.Cut(cmd.collection(), ".")
		}
		x.forget(func(r resource) bool { return r.db == db })
		return nil
	}
	if x.missing[resourceOf(cmd)] {
		return nil
	}
	return x.ensure(resourceOf(cmd))
}

// after indexes the collection of a command that may have created it.
func (x *idIndexer) after(cmd *command) error {
	if x == nil || x.dir == "" {
		return nil
	}
	switch cmd.name {
	case "insert", "update", "findAndModify", "create", "createIndexes":
		delete(x.missing, resourceOf(cmd))
		return x.ensure(resourceOf(cmd))
	}
	return nil
}

// ensure adds the index to r's table, if r exists and has not had it
// added by this process.
func (x *idIndexer) ensure(r resource) error {
	if r.coll == "" || x.done[r] || !validDBName(r.db) {
		return nil
	}
	file := filepath.Join(x.dir, r.db+".sqlite")
	if _, err := os.Stat(file); err != nil {
		x.missing[r] = true // no such database yet
		return nil
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(file),
		RawQuery: "mode=rw&_pragma=busy_timeout(10000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return fmt.Errorf("embedded: open %s: %w", file, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var table string
	err = db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, r.coll).Scan(&table)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		x.missing[r] = true // no such collection yet
		return nil
	case err != nil:
		return fmt.Errorf("embedded: find the table of %s: %w", r, err)
	}
	q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+idIndexName, table)
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("embedded: index _id of %s: %w", r, err)
	}
	x.done[r] = true
	return nil
}

// validDBName reports whether name is a database name FerretDB accepts,
// and so a safe file name: letters, digits, _ and -, at most 63 of them.
func validDBName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c == '-' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')) {
			return false
		}
	}
	return true
}

// indexIDs runs step (the indexer's before or after) for cmd; a failure
// costs speed, not correctness, so it is logged and the command goes on.
func (f *front) indexIDs(step func(*command) error, cmd *command) {
	if err := step(cmd); err != nil {
		f.log.Warn("embedded: cannot add the _id index FerretDB's lookups use", "err", err)
	}
}
