package migrate_test

import (
	"context"
	"fmt"
	"log"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

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
