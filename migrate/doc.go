// Package migrate moves a harmonia database between schema versions, in
// the shape of pressly/goose: an explicit list of migrations, a runner
// that applies them under a lease lock, and a record of each run. (The
// combined inventory file is imported by package inventoryfile.)
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
// [Builtin] returns harmonia's own migrations: 1 is
// [harmonia.Store.EnsureIndexes] (the collections' indexes and validators),
// 2 moves model artifacts and datasets from schema_version 1 to 2 (tags
// lowercase and unique), 3 gives jobs cancelled before the cancelled
// status existed that status, 4 merges licenses whose SPDX ids differ
// only in spelling into the canonical one, 5 gives inventory versions
// published before content digests their digest, 6 makes artifact and
// dataset names unique ignoring case and Unicode form (a name_key field
// and its unique index), reporting names that collide without merging
// them.
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
package migrate
