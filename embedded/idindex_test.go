package embedded

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// idLookupPlan returns SQLite's plan for FerretDB's own lookup by _id in
// the table of db.coll, read straight from the data directory.
func idLookupPlan(t *testing.T, dir, db, coll string) string {
	t.Helper()
	sdb, err := sql.Open("sqlite", "file:"+filepath.Join(dir, db+".sqlite")+"?mode=ro")
	require.NoError(t, err)
	defer sdb.Close()
	var table string
	require.NoError(t, sdb.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll).Scan(&table))
	rows, err := sdb.Query(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM "`+table+`" WHERE _ferretdb_sjson->'$._id' = ?`, `"x"`)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return strings.Join(plan, "; ")
}

// FerretDB looks documents up by _id (a find on {_id}, each document an
// update or delete writes) with an expression its own _id index does not
// serve; the front's index does, on every collection, also after a drop,
// a rename and a restart.
func TestIDIndexServesFerretDBLookups(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, Options{Dir: dir})
	ctx := ctxTimeout(t)
	db := connect(t, srv.URI()).Database("idx")

	_, err := db.Collection("a").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	require.NoError(t, db.CreateCollection(ctx, "b"))
	_, err = db.Collection("c").UpdateOne(ctx, bson.D{{Key: "_id", Value: "k"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}},
		options.UpdateOne().SetUpsert(true))
	require.NoError(t, err)
	for _, coll := range []string{"a", "b", "c"} {
		require.Contains(t, idLookupPlan(t, dir, "idx", coll), idIndexName, coll)
	}

	require.NoError(t, db.Collection("a").Drop(ctx))
	_, err = db.Collection("a").InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
	require.NoError(t, err)
	require.Contains(t, idLookupPlan(t, dir, "idx", "a"), idIndexName, "a collection dropped and made again")

	require.NoError(t, db.Drop(ctx))
	_, err = db.Collection("a").InsertOne(ctx, bson.D{{Key: "_id", Value: 3}})
	require.NoError(t, err)
	require.Contains(t, idLookupPlan(t, dir, "idx", "a"), idIndexName, "a database dropped and made again")

	// A table made by an older server, without the index, gets it on
	// the first command that touches it after a restart.
	sdb, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "idx.sqlite"))
	require.NoError(t, err)
	var table string
	require.NoError(t, sdb.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = 'a'`).Scan(&table))
	require.NoError(t, srv.Close())
	_, err = sdb.Exec(`DROP INDEX "` + table + idIndexName + `"`)
	require.NoError(t, err)
	require.NoError(t, sdb.Close())
	require.NotContains(t, idLookupPlan(t, dir, "idx", "a"), idIndexName)
	srv2 := startServer(t, Options{Dir: dir})
	n, err := connect(t, srv2.URI()).Database("idx").Collection("a").CountDocuments(ctx, bson.D{{Key: "_id", Value: 3}})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Contains(t, idLookupPlan(t, dir, "idx", "a"), idIndexName, "after a restart")
}
