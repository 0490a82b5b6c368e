package migrate_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/embedded"
	"github.com/harmonia-ml/harmonia/migrate"
)

// exampleDB starts an in-memory embedded server and returns a database on
// it. A real program passes its own *mongo.Database.
func exampleDB(ctx context.Context) (*mongo.Database, func()) {
	srv, err := embedded.Start(ctx, embedded.Options{InMemory: true})
	if err != nil {
		log.Fatal(err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		log.Fatal(err)
	}
	return client.Database("example"), func() {
		_ = client.Disconnect(context.Background())
		_ = srv.Close()
	}
}

// Apply harmonia's built-in migrations and one of the program's own, see
// what a dry run plans, and read the status.
func ExampleRunner_Up() {
	ctx := context.Background()
	db, done := exampleDB(ctx)
	defer done()

	ms := append(migrate.Builtin(), migrate.Migration{
		Version: 100, Name: "seed the default team",
		Up: func(ctx context.Context, db *mongo.Database) error {
			// Idempotent: an upsert by key.
			_, err := db.Collection("teams").UpdateOne(ctx, bson.D{{Key: "_id", Value: "ml-platform"}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "members", Value: 3}}}}, options.UpdateOne().SetUpsert(true))
			return err
		},
	})
	r, err := migrate.New(db, ms, nil)
	if err != nil {
		log.Fatal(err)
	}
	plan, err := r.Up(ctx, &migrate.UpOpts{DryRun: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range plan.Planned {
		fmt.Printf("would apply %d %s\n", s.Version, s.Name)
	}
	rep, err := r.Up(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("applied", len(rep.Applied), "now at version", rep.Current)
	st, err := r.Status(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range st.Migrations {
		fmt.Println(m.Version, m.State)
	}
	// Output:
	// would apply 1 create collections and indexes
	// would apply 2 tags lowercase and unique (schema_version 1 → 2)
	// would apply 100 seed the default team
	// applied 3 now at version 100
	// 1 applied
	// 2 applied
	// 100 applied
}

// Import an inventory twice: the second import finds everything
// unchanged and writes nothing. Rejected entries are reported with their
// section, index, key, field and reason.
func ExampleImport() {
	ctx := context.Background()
	db, done := exampleDB(ctx)
	defer done()
	store, err := harmonia.Open(ctx, db, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		log.Fatal(err)
	}
	const inventory = `{
	  "format_version": 1,
	  "licenses": [{"spdx_id": "Apache-2.0", "commercial_use": true}],
	  "artifacts": [
	    {"name": "resnet50", "version": "1.2.0", "path": "models/resnet50.onnx", "size_bytes": 102400,
	     "hashes": {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}, "license": "Apache-2.0"},
	    {"name": "bert", "version": "1.0.0", "path": "models/bert.onnx", "license": "GPL-3.0-only"}
	  ],
	  "versions": [{"version_tag": "2026.11.0", "artifacts": ["resnet50@1.2.0"], "published_by": "ml-platform"}]
	}`
	for range 2 {
		rep, err := migrate.Import(ctx, store, strings.NewReader(inventory), nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("artifacts %+v, versions %+v\n", rep.Artifacts, rep.Versions)
		for _, r := range rep.Rejections {
			fmt.Println("  rejected:", r)
		}
	}
	// Output:
	// artifacts {Inserted:1 Updated:0 Unchanged:0 Rejected:1}, versions {Inserted:1 Updated:0 Unchanged:0 Rejected:0}
	//   rejected: artifacts[1] bert@1.0.0: license: no license with spdx_id GPL-3.0-only in the database nor earlier in the file
	// artifacts {Inserted:0 Updated:0 Unchanged:1 Rejected:1}, versions {Inserted:0 Updated:0 Unchanged:1 Rejected:0}
	//   rejected: artifacts[1] bert@1.0.0: license: no license with spdx_id GPL-3.0-only in the database nor earlier in the file
}
