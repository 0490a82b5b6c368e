package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/docdb"
	"github.com/harmonia-ml/harmonia/migrate"
)

// Apply harmonia's built-in migrations and one of the program's own, see
// what a dry run plans, and read the status.
func ExampleRunner_Up() {
	ctx := context.Background()
	db, done := docdb.Database(ctx)
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
	// would apply 3 cancelled jobs get the cancelled status
	// would apply 4 license SPDX ids in canonical spelling
	// would apply 5 inventory versions get their content digest
	// would apply 6 names unique ignoring case (name_key)
	// would apply 100 seed the default team
	// applied 7 now at version 100
	// 1 applied
	// 2 applied
	// 3 applied
	// 4 applied
	// 5 applied
	// 6 applied
	// 100 applied
}

// A failed migration stops the run and blocks every later one until a
// person has looked at it. After repairing what it left, Resolve clears
// the record so that the next Up runs it again (or, with MarkApplied,
// records the repair as the migration's work).
func ExampleRunner_Resolve() {
	ctx := context.Background()
	db, done := docdb.Database(ctx)
	defer done()

	ready := false // stands for the condition the repair fixes
	ms := []migrate.Migration{{
		Version: 1, Name: "backfill owners",
		Up: func(ctx context.Context, db *mongo.Database) error {
			if !ready {
				return errors.New("owners collection missing")
			}
			return nil
		},
	}}
	r, err := migrate.New(db, ms, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = r.Up(ctx, nil)
	fmt.Println("up:", harmonia.ErrorCode(err))
	_, err = r.Up(ctx, nil)
	fmt.Println("again:", harmonia.ErrorCode(err))

	ready = true // the repair
	if err := r.Resolve(ctx, 1, nil); err != nil {
		log.Fatal(err)
	}
	rep, err := r.Up(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("applied:", len(rep.Applied), "now at version", rep.Current)
	// Output:
	// up: internal
	// again: conflict
	// applied: 1 now at version 1
}
