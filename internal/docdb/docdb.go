// Package docdb gives the runnable examples of harmonia's documentation a
// database: a fresh one per example, on an in-memory embedded server
// started once per process. A real program passes its own
// *mongo.Database.
package docdb

import (
	"context"
	"fmt"
	"log"
	"sync"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/embedded"
)

var (
	client = sync.OnceValue(func() *mongo.Client {
		srv, err := embedded.Start(context.Background(), embedded.Options{InMemory: true})
		if err != nil {
			log.Fatal(err)
		}
		c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
		if err != nil {
			log.Fatal(err)
		}
		return c
	})
	databases atomic.Int64
)

// Database returns a new, empty database and a function that drops it. It
// ends the program on failure, as an example may.
func Database(ctx context.Context) (*mongo.Database, func()) {
	db := client().Database(fmt.Sprintf("example_%d", databases.Add(1)))
	return db, func() { _ = db.Drop(context.Background()) }
}

// Store opens a harmonia Store with opts (nil for the defaults) and its
// indexes on a fresh database, and returns it with a function that drops
// the database.
func Store(ctx context.Context, opts *harmonia.Options) (*harmonia.Store, func()) {
	db, done := Database(ctx)
	store, err := harmonia.Open(ctx, db, opts)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		log.Fatal(err)
	}
	return store, done
}
