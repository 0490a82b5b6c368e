// Package harmonia is the MongoDB data layer of a model inventory.
//
// Go services import it to record model artifacts, their licenses and
// datasets as typed, validated entities; to publish immutable inventory
// versions atomically; to queue and run download, validate and inference
// jobs; and to migrate their data between schema versions. It is a library,
// not a server: the caller owns the *mongo.Client (driver v2), and
// harmonia never connects by itself.
//
// # The store
//
// [Open] returns a [Store] over a *mongo.Database and detects what the
// deployment supports ([Capabilities]: topology, transactions,
// validators). [Store.EnsureIndexes] creates the indexes, once per
// deployment (the migrate package's first built-in migration calls it).
// Constructors take a pointer to their options, nil meaning every
// default: Open(ctx, db, *[Options]), migrate.New(db, migrations,
// *migrate.Options), inventoryfile.Import(ctx, store, r,
// *inventoryfile.ImportOptions). worker.New(store, *worker.Options) is
// the exception: its options name the handlers, so they are required.
// The job queue's data operations are on [Store.Queue], the bulk writes
// on [Store.Bulk]; the executor (workers, built-in handlers, scheduler)
// is package worker.
//
// # Entities
//
// [License], [Dataset], [ModelArtifact], [InventoryVersion] and [Job] are
// Go structs whose bson and validate tags sit side by side, so a
// document's shape and its rules live in one place. Every write validates
// first; a broken rule is an [*Error] with code [CodeInvalid] naming the
// entity and every field at fault, and nothing is written. The four codes
// ([CodeInvalid], [CodeNotFound], [CodeConflict], [CodeInternal]) are
// tested with errors.Is and the sentinels [ErrInvalid], [ErrNotFound],
// [ErrConflict] and [ErrInternal].
//
// The calls follow three conventions:
//   - lookups by id are Get…(ctx, id); lookups by natural key say so:
//     [Store.GetArtifactByKey] (name and version), [Store.GetDatasetByKey],
//     [Store.GetLicenseBySPDXID], [Store.GetVersionByTag],
//     [Store.VersionContentsByTag], [Store.DiffVersionsByTag];
//   - lists take a filter value and return a [Page] whose Next is the
//     cursor of the following page: [Store.ListArtifacts] and
//     [Store.ListDatasets] ([DatasetFilter]), [Store.ListLicenses]
//     ([LicenseFilter]), [Store.ListVersions] ([VersionFilter]);
//   - bulk calls ([Bulk.InsertArtifacts], [Bulk.ReplaceArtifacts],
//     [Store.AllArtifacts] and their siblings for licenses and datasets)
//     apply the rules of the single-entity calls to many entities with a
//     few commands, and return one error per item.
//
// # Names
//
// Artifact and dataset names and versions and inventory version tags are
// what people type and read, so harmonia keeps them from looking alike
// (names.go holds the rules, used by every write, bulk write, lookup and
// $jsonSchema validator): they are stored in Unicode NFC ([NormalizeName];
// lookups normalize the same way, so input in NFD finds the NFC entry),
// and white space at either end, control characters and format characters
// (zero-width spaces and joiners, bidirectional controls) are refused with
// an error naming the entity and the field ([NameProblem]).
//
// Artifact and dataset names are unique ignoring case: "RESNET50" and
// "resnet50" under one version are one entry, found by either spelling,
// and the first writer's spelling stays. The key is [NameKey] (NFC, then
// Unicode case folding), stored as name_key under the unique index
// {name_key, version}. Why: two names that differ only in case are a trap
// for whoever types one of them, and package registries decide the same
// way (PyPI compares names case-insensitively; OCI repositories and npm
// packages must be lower case). Keeping the writer's spelling, rather than
// lower-casing every name as OCI does, keeps names such as "ResNet50" as
// their authors wrote them. Versions and version tags compare exactly
// after NFC: SemVer's pre-release and build parts are case-sensitive.
// Alias names and tags are lowercase ASCII by their own rule. Databases
// from before these rules get the key from migration 6 of package
// migrate, which reports names that now collide and merges nothing
// ([ErrNameCollision]).
//
// # Publish
//
// [Store.Publish] creates an immutable inventory version and marks its
// artifacts and datasets published, as one unit: one transaction on a
// replica set or mongos, a crash-safe staged publish elsewhere (a pending
// version, idempotent marks, then a flip to published). A crash between
// the steps leaves a pending version that readers never see and that
// [Store.RecoverPublishes], or the next Publish, settles. Published
// artifacts and datasets cannot be deleted, and their content (path,
// size, sha256) cannot change ([ErrPublishedContent]); [PublishProblem]
// is the rule Publish applies to each of them. [Store.LatestVersion],
// [Store.ListVersions] and [Store.DiffVersionsByTag] read what was
// published.
//
// # Units of work
//
// Every Store method that reads or writes data takes the session the ctx
// carries, as the driver does: called inside a transaction (the callback
// of [Store.InTransaction], or of the caller's own
// Session.WithTransaction), creates, updates, deletes, Enqueue and Publish
// all run in it, and become visible together when it commits. Publish
// then opens no session of its own. A service that publishes and writes
// an audit record of its own does:
//
//	err := store.InTransaction(ctx, func(ctx context.Context) error {
//		res, err := store.Publish(ctx, req)
//		if err != nil {
//			return err
//		}
//		_, err = audit.InsertOne(ctx, auditRecord(res))
//		return err
//	})
//
// The rules that follow: the callback may run more than once (the driver
// retries a transaction after a transient error), so it must be
// idempotent and do nothing outside the database; every operation in it
// must get its ctx. A deployment without transactions (a standalone
// server) cannot make several writes one unit: there InTransaction, and
// Publish inside a caller's transaction, fail with [ErrNoTransactions]
// and write nothing. EnsureIndexes and migrations do not belong in a
// transaction.
//
// # Releases
//
// Every published version carries a content digest ([ManifestDigest]:
// "sha256:<hex>" over the RFC 8785 canonical JSON of its manifest, without
// ObjectIds), equal for equal contents in any database; an idempotent
// Publish compares digests, and [Store.VerifyVersion] recomputes the
// digest from the stored artifacts to report drift. Aliases
// ("production", "canary") point at published versions: [Store.SetAlias]
// moves one, as a compare-and-set when [SetAliasOpts] names the expected
// target, and records the move (who, when, why) in the same unit, one
// transaction or a crash-safe staged move that [Store.RecoverAliases]
// settles. [Store.ResolveAlias], [Store.ListAliases],
// [Store.DeleteAlias] and [Store.AliasHistory] read and change them, and
// [Store.WatchAlias] follows one by polling, on every deployment.
//
// # Jobs
//
// [Queue.Enqueue] adds a job; a unique key keeps one pending or running
// job per key, and a params value with a Validate method is checked
// before anything is written. A worker.Worker claims jobs under a lease,
// heart-beats while its worker.Handler runs, and records the outcome:
// success, a retry after a backoff, or failure once the attempts are used
// up or the handler returns a [Permanent] error. A job whose worker dies
// is taken over when its lease expires. [Queue.CancelJob] takes a pending
// job off the queue, or stops a running one at its next heartbeat
// ([JobCancelled], [ErrJobCancelled]). Handlers log through a worker.JobLogger
// to the job's log_tail and the events collection ([Queue.JobLog]).
//
// A worker works in batches, so that its commands per job stay under one
// (examples/bench: 0.62 for jobs that log two lines, where a claim, two
// writes per line and a finish made six). It claims jobs for all
// its free slots at once ([Queue.ClaimJobs]: one stamp per job, in one
// update command), and the workers that share a [ClaimPool] (worker.Options.ClaimPool;
// a worker given none has one of its own) share the claimable jobs one
// sorted read found, so that they do not compete for them. One
// goroutine per worker writes its heartbeats, outcomes and buffered log
// lines together: one update command (one statement per job, each
// conditioned on the job's own lease: [Queue.WriteLeases] for your own
// loops) and one insert of events per round. The single-job calls
// ([Queue.ClaimJob], [Queue.Heartbeat], [Queue.AppendLog],
// [Queue.CompleteJob], [Queue.FailJob], [Queue.ReleaseJob]) remain for
// loops that run handlers themselves.
//
// # Leases
//
// A lease is measured from before its claim or heartbeat is sent: the
// worker reads the clock, then sends the write, and stores that time plus
// the lease as the expiry. Its own deadline is the same instant on its
// monotonic clock, so the worker gives a job up (cancelling its handler
// with [ErrLeaseLost]) no later than the stored expiry, and heart-beats
// every HeartbeatInterval counted from the claim's sending, not from the
// handler's start, while the handler runs and while its outcome waits to
// be written. The outcomes of handlers that return are written at once,
// after at most BatchWait for the worker's other handlers, and never past
// a lease's deadline.
//
// Which clock sets and judges expiries is the Store's [LeaseClock]. Where
// the server offers its own clock ($$NOW: MongoDB 4.2 and later, and the
// embedded server, [Capabilities.ServerClock]) claims and heartbeats set
// lease_expires_at to the server's $$NOW plus the lease, in an update
// pipeline, and claims look for expired leases with an $expr against
// $$NOW: one clock decides, and the workers' clocks may disagree by any
// amount. The worker still gives a job up on its own monotonic clock,
// counted from the sending, which never runs past the server's expiry.
// Job.LeaseExpiresAt is then the worker's estimate (its clock at the
// sending plus the lease), not the stored value.
//
// Elsewhere (MongoDB before 4.2, LeaseClockLocal, or a Store whose
// TestOptions.Now is set, as tests do) the expiry is written from the
// worker's clock, and other workers compare it with theirs. A worker
// whose clock runs ahead of the lease holder's by d sees the lease expire
// d early: clocks must agree to within the margin between
// HeartbeatInterval and LeaseDuration (two thirds of the lease by
// default, 20 s with the 30 s default lease). NTP keeps hosts within
// milliseconds; a host with a broken clock can take over live jobs.
// A job's run-after, backoffs, a worker.Scheduler's periods and period claims,
// and the migrate package's lock are always on the clients' clocks (their
// claims are upserts, where MongoDB refuses $expr): skew there delays or
// hastens work, and only skew near a claim's lease (a minute by
// default) lets a second process take over a live claim.
//
// The built-in handlers check and fetch artifact files:
// worker.ValidateHandler (size and sha256 of the local file),
// worker.DownloadHandler (fetch from the directories and hosts it allows,
// verify, then rename into place) and
// worker.InferenceHandler (your function, given the artifact); worker.HashFile is
// their streaming digest.
//
// [Queue.ListJobs] pages through jobs by status, type, worker, unique key
// and creation time. [Queue.PruneJobs] deletes finished jobs and their
// log lines older than a cutoff ([Queue.EnsureJobTTL] lets a MongoDB
// server do it continuously). A worker.Scheduler enqueues the jobs of periodic
// worker.Schedules (an interval or a cron line) once per period across every
// process that runs one; worker.AuditSchedule re-verifies the published
// artifacts on a schedule.
//
// # Migrations
//
// Package migrate applies an explicit, ordered list of schema_version
// migrations (its Builtin list first) under a lease lock that expires
// after a crash, records each run, and refuses to go on after a failure
// until someone calls Resolve. Package inventoryfile imports the combined
// inventory file through the Store's bulk operations ([Store.Bulk]), streaming, with a
// dry run and a per-entry report.
//
// # Testing
//
// Package harmoniatest gives tests a fresh database per test from the
// strongest server it can have (a given deployment, a mongod binary, or
// the embedded server), and skips tests that need what the lane lacks:
//
//	func TestMain(m *testing.M) { harmoniatest.Main(m) }
//
//	func TestPublishFlow(t *testing.T) {
//		store := harmoniatest.Store(t, nil) // migrated; its database is dropped when the test ends
//		…
//	}
//
// harmoniatest.Database gives a bare database instead. A Store opened on
// a database whose unique indexes were never created refuses the writes
// that rely on them ([ErrIndexesMissing]) until [Store.EnsureIndexes] or
// the migrate package's built-in migrations have run, or creates them
// itself with Options.EnsureIndexes.
//
// TestOptions.Now sets the Store's clock, so tests control leases, backoffs
// and recovery without waiting.
//
// # The embedded server
//
// Package embedded runs a MongoDB-compatible server in-process (FerretDB
// v1 on SQLite, behind a front that admits one command at a time), for
// development, tests and examples: every runnable example of this
// documentation starts one. In its replica-set mode it has
// multi-document transactions (and validators and fail points), and
// Publish uses one transaction there; in its standalone mode it has none,
// and harmonia uses the staged publish. Its package documentation lists
// what else it lacks. `go run ./embedded/cmd/harmonia-devdb` serves one on a port.
package harmonia
