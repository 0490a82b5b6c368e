package harmonia_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/docdb"
)

// Open a Store over a database and see what the deployment supports. The
// embedded server of this example is a standalone server without
// transactions, so Publish will use the staged path; it has its own
// clock ($$NOW), so job leases are measured on it.
func ExampleOpen() {
	ctx := context.Background()
	db, done := docdb.Database(ctx)
	defer done()

	store, err := harmonia.Open(ctx, db, &harmonia.Options{RecoverAfter: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		log.Fatal(err)
	}
	caps := store.Capabilities()
	fmt.Println("topology:", caps.Topology, "transactions:", caps.Transactions)
	fmt.Println("server clock:", caps.ServerClock, "leases on:", store.Queue().LeaseClock())
	// Output:
	// topology: standalone transactions: false
	// server clock: true leases on: server
}
