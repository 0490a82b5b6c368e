// Package migrate moves a harmonia database between schema versions and
// imports the combined inventory file.
//
// # Migrations
//
// A migration is a Go value: a version, a name, an Up function taking the
// context and the database, and optionally a Down. A program lists its
// migrations, in increasing order of version, and gives the list to [New];
// there is no init() registration and no global registry, and a duplicate
// or out-of-order version fails at construction:
//
//	ms := append(migrate.Builtin(), migrate.Migration{
//		Version: 100, Name: "backfill owners",
//		Up: func(ctx context.Context, db *mongo.Database) error { … },
//	})
//	r, err := migrate.New(db, ms, nil)
//	report, err := r.Up(ctx, nil) // or &migrate.UpOpts{To: 2, DryRun: true}
//
// [Runner.Up] applies the pending migrations (to the latest, or to a
// version), [Runner.Down] reverts the last applied one, [Runner.Status]
// lists every migration with its state, times, duration, error and counts,
// and UpOpts.DryRun reports what Up would run without running it.
//
// [Builtin] returns harmonia's own migrations: 1 creates the collections'
// indexes, 2 moves model artifacts and datasets from schema_version 1 to 2
// (tags lowercase and unique).
//
// # Records
//
// Each migration that ran has a record in the schema_migrations collection
// (unique on version): name, checksum (SHA-256 of version and name: Go
// functions cannot be hashed, so a changed body under the same name goes
// unnoticed), state, owner, attempts, started_at, applied_at, duration_ms,
// error and the counts the migration reported with [Count]. States:
//
//   - running: a runner is applying it (or died doing so);
//   - applied;
//   - failed: Up or Down returned an error or panicked;
//   - interrupted: the run's context was cancelled, or the runner lost
//     its lock, half-way.
//
// # Failures and Resolve
//
// A failed migration stops the run, and every later Up and Down refuses
// to go on, with a [harmonia.CodeConflict] error that names the migration
// and its error, until a person has looked at it. Nothing is ever "dirty"
// in an unexplained way: the record says what failed, when, on which
// runner and why. To go on:
//
//  1. Read the error: Runner.Status, or the error of Up.
//  2. Repair what the migration left, if anything (on a deployment with
//     transactions it left nothing).
//  3. Call [Runner.Resolve](ctx, version, nil) to clear the record, so
//     that the next Up runs the migration again; or, when the repair did
//     the migration's work by hand, Resolve(ctx, version,
//     &migrate.ResolveOpts{MarkApplied: true}) to record it as applied.
//
// An interrupted migration needs no Resolve: the next Up runs it again and
// reports it as resumed, which is safe because migrations are
// transactional or idempotent (below).
//
// # The lock
//
// Up, Down and Resolve hold a lock while they work: one document in the
// schema_migrations_lock collection with the unique _id
// "schema_migrations", an owner, a token and an expiry. A runner takes it
// by inserting that document, or by taking over one whose lease has
// expired (one conditional update: two runners cannot both win); it
// renews the lease every third of Options.LockLease while it works, and
// deletes the document when done. A crashed runner's lock therefore
// expires by itself after at most one lease, and the next runner takes it
// over (and logs that it did). A runner that cannot renew its lease (it
// was taken over after a long pause) has its migration's context
// cancelled. Other runners wait for the lock, polling, up to
// Options.LockWait, then find nothing left to do: any number of runners
// may start at once and each migration is applied once.
//
// # Transactions and idempotence
//
// On a deployment with multi-document transactions (a replica set or a
// mongos) each migration runs inside one transaction with its applied
// record, unless it sets NoTransaction. Elsewhere (a standalone server,
// the embedded server) there are no transactions, so a migration must be
// written to be idempotent: running it again after a partial run must
// finish the job and change nothing that is done. The built-in migrations
// are: index creation skips what exists, and the tags transform selects
// documents by schema_version and updates each one conditionally, so its
// progress is implied by the data.
//
// # Importing an inventory
//
// [Import] reads the combined inventory file (DESIGN.md section 6):
//
//	f, err := os.Open("inventory/combined_inventory.json")
//	report, err := migrate.Import(ctx, store, f, &migrate.ImportOptions{
//		BaseDir: "inventory", // relative paths in the file are relative to it
//	})
//
// It streams the file (json.Decoder tokens, one entry decoded at a time),
// checks every entry with its entity's Validate and resolves its
// references, and writes in batches: new entries with unordered
// InsertMany, changed ones with bulk updates of at most WriteBatchMax,
// unchanged ones not at all. Versions are published through
// [harmonia.Store.Publish], with its guarantees. A second import of the
// same file writes nothing and reports every entry unchanged.
//
// The report counts inserted, updated, unchanged and rejected entries per
// section and lists each rejection with its section, index, key, field
// and reason. A rejected entry does not stop the others unless
// ImportOptions.AllOrNothing is set; DryRun reports without writing.
//
// How it reads what exists: once per collection, at the first section
// that needs it, one find with a projection streams the keys and a
// fingerprint of the comparable fields of every document into a compact
// index (about 135 bytes per document). On the embedded server a query with a
// 1,000-key $in took 736 ms on a 5,000-document collection (no index is
// used: every document is compared with every key), so reading per
// batch would grow with the square of the collection, while the whole
// collection streams in about 0.5 s.
//
// # Hostile input
//
// The importer bounds what one entry may cost: MaxEntryBytes per JSON
// value (the reader refuses to feed the decoder more), MaxEntryDepth
// levels of nesting in an entry, the entities' own string and list
// limits, MaxRejections listed rejections. Unknown fields are
// rejections, so a misspelt field never passes silently; unknown
// top-level fields are rejections and skipped. FuzzImport checks that
// arbitrary bytes neither panic nor leave a partial or invalid document.
package migrate
