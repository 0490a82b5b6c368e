package harmonia

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Defaults of [Options] and of list calls.
const (
	// RecoverAfterDefault is how old a pending staged publish must be before
	// RecoverPublishes settles it.
	RecoverAfterDefault = 2 * time.Minute
	// ListLimitDefault is the page size of list calls when Limit is 0.
	ListLimitDefault = 100
	// ListLimitMax is the largest page size list calls return.
	ListLimitMax = 1000
)

// Defaults of the job options of [Options] and [EnqueueOpts].
const (
	// MaxAttemptsDefault is how many attempts a job gets when
	// EnqueueOpts.MaxAttempts is 0.
	MaxAttemptsDefault = 3
	// JobBackoffBaseDefault is the wait after a job's first failed attempt.
	JobBackoffBaseDefault = 10 * time.Second
	// JobBackoffMaxDefault caps the wait between a job's attempts.
	JobBackoffMaxDefault = time.Hour
	// JobLogTailDefault is how many log lines a job's log_tail keeps.
	JobLogTailDefault = 50
)

// Options configures a [Store]. The zero value is ready to use.
type Options struct {
	// Logger receives harmonia's notices (skipped validators, recovered
	// publishes). Defaults to a logger that discards everything.
	Logger *slog.Logger
	// RequireTransactions makes Open fail with [CodeInvalid] on a
	// deployment without multi-document transactions (a standalone server,
	// or the embedded server outside its replica-set mode), instead of
	// falling back to staged publishes.
	// Defaults to false.
	RequireTransactions bool
	// RecoverAfter is how long a staged publish may stay pending before
	// RecoverPublishes (and every later Publish) settles it as crashed,
	// and how long a staged alias move may stay pending before
	// RecoverAliases (and the alias's next move) rolls it back.
	// Defaults to RecoverAfterDefault.
	RecoverAfter time.Duration
	// JobBackoffBase is how long a job waits after its first failed
	// attempt; each further failed attempt doubles the wait, up to
	// JobBackoffMax. The wait is drawn at random from the upper half of
	// that (jitter), so that jobs which failed together do not retry
	// together. Defaults to JobBackoffBaseDefault.
	JobBackoffBase time.Duration
	// JobBackoffMax caps the wait before a failed job's next attempt.
	// Defaults to JobBackoffMaxDefault.
	JobBackoffMax time.Duration
	// JobLogTail is how many of a job's last log lines its log_tail keeps.
	// Defaults to JobLogTailDefault.
	JobLogTail int
	// EnsureIndexes makes Open call [Store.EnsureIndexes], creating the
	// collections' indexes and validators where they are missing.
	// Otherwise Open only looks (one listIndexes per collection) and the
	// writes that rely on a missing unique index (creating licenses,
	// artifacts and datasets, enqueueing, publishing) fail with
	// [CodeInvalid] and the cause [ErrIndexesMissing], naming the fix.
	// Defaults to false: production deployments create indexes with the
	// migrate package, which records them.
	EnsureIndexes bool
	// LeaseClock is the clock job leases are measured on.
	// Defaults to LeaseClockAuto: the server's where it offers one, the
	// Store's otherwise.
	LeaseClock LeaseClock
	// Test holds the settings that only tests set: a clock and a source
	// of randomness of their own. Production code leaves it nil.
	// Defaults to nil: the system clock and math/rand/v2's source.
	Test *TestOptions
}

// TestOptions are the settings of [Options] that only tests set, kept
// apart so that none of them changes a production Store unnoticed. None
// of them changes which clock job leases are measured on: a test that
// wants its Now to rule leases too sets Options.LeaseClock to
// LeaseClockLocal, in plain sight.
type TestOptions struct {
	// Now replaces the Store's clock: every time the Store records
	// (created_at, run_after, published_at, ...) and every time it
	// compares with, except a lease's on LeaseClockServer.
	// Defaults to time.Now.
	Now func() time.Time
	// Rand is the source of the retry jitter, for repeatable waits. The
	// Store serializes its use. Defaults to math/rand/v2's top-level
	// source.
	Rand *rand.Rand
}

// Capabilities describes what the connected deployment supports, detected
// once by [Open].
type Capabilities struct {
	// Topology is "replica_set", "sharded" or "standalone".
	Topology string
	// ServerVersion is the server's reported version.
	ServerVersion string
	// FerretDB is true when the server is FerretDB (the embedded server).
	// It is for information: the other fields come from what the server
	// does, not from its name.
	FerretDB bool
	// Transactions reports multi-document transactions: a replica set or
	// a mongos with logical sessions. Publish uses one transaction when
	// true and the staged publish otherwise.
	Transactions bool
	// Validators reports server-side $jsonSchema validators (the server
	// knows collMod); EnsureIndexes installs them when true.
	Validators bool
	// ServerClock reports that the server evaluates $$NOW, its own clock,
	// in queries ($expr) and update pipelines: MongoDB 4.2 and later, and
	// the embedded server. Job leases are then measured on it (see
	// [LeaseClock]).
	ServerClock bool
}

// Store is harmonia's handle on one MongoDB database. It is safe for
// concurrent use. The caller owns the *mongo.Client behind the database and
// disconnects it; the Store holds no resources of its own.
type Store struct {
	db   *mongo.Database
	now  func() time.Time
	log  *slog.Logger
	caps Capabilities
	opts Options
	// leaseClock is LeaseClockServer or LeaseClockLocal.
	leaseClock LeaseClock
	hooks      testHooks
	cols       collections
	// indexes records the unique indexes Open found missing.
	indexes indexState
	// randMu serializes the use of opts.Test.Rand.
	randMu sync.Mutex
	// queue and bulk are the Store's Queue() and Bulk().
	queue Queue
	bulk  Bulk
	// enqueued is closed by the next enqueue ([Queue.JobsEnqueued]).
	enqueued wakeup
}

type collections struct {
	artifacts, licenses, datasets, versions, jobs, events *mongo.Collection
	aliases, aliasHistory                                 *mongo.Collection
}

// testHooks lets harmonia's own tests inject failures between steps.
type testHooks struct {
	publishStep func(ctx context.Context, step string) error
	aliasStep   func(ctx context.Context, step string) error
	// pruneRead runs between PruneJobs's read of a batch and its deletes.
	pruneRead func(ctx context.Context, ids []bson.ObjectID)
}

// Open returns a Store over db. It pings the server and detects its
// capabilities. Then it checks, with one listIndexes per collection, that
// the unique indexes that refuse duplicate natural keys exist. With
// Options.EnsureIndexes it creates whatever is missing ([Store.EnsureIndexes]);
// without, it does not create them, and the writes that rely on a missing
// one are refused with [ErrIndexesMissing] until the indexes exist (call
// [Store.EnsureIndexes] or run the migrate package's built-in migrations
// once per deployment; a refused write looks again before refusing).
//
// Errors: [CodeInternal] when the server cannot be reached, [CodeInvalid]
// when Options.RequireTransactions is set and the deployment has none.
func Open(ctx context.Context, db *mongo.Database, opts *Options) (*Store, error) {
	if db == nil {
		return nil, invalidf("store", "db", "a *mongo.Database is required")
	}
	if problem := DatabaseNameProblem(db.Name()); problem != "" {
		return nil, invalidf("store", "db", "database name %q %s", db.Name(), problem)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	now := time.Now
	if o.Test != nil && o.Test.Now != nil {
		now = o.Test.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.RecoverAfter = cmp.Or(o.RecoverAfter, RecoverAfterDefault)
	if o.RecoverAfter < 0 {
		return nil, invalidf("store", "recover_after", "must not be negative")
	}
	if err := o.applyJobDefaults(); err != nil {
		return nil, err
	}
	caps, err := DetectCapabilities(ctx, db)
	if err != nil {
		return nil, err
	}
	if o.RequireTransactions && !caps.Transactions {
		return nil, invalidf("store", "require_transactions",
			"the deployment (%s %s) has no multi-document transactions: use a replica set or mongos", caps.Topology, caps.ServerVersion)
	}
	leaseClock, err := resolveLeaseClock(o.LeaseClock, caps)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, now: now, log: o.Logger, caps: caps, opts: o, leaseClock: leaseClock}
	s.queue.store, s.bulk.store = s, s
	s.cols = collections{
		artifacts: db.Collection(CollectionArtifacts),
		licenses:  db.Collection(CollectionLicenses),
		datasets:  db.Collection(CollectionDatasets),
		versions:  db.Collection(CollectionVersions),
		jobs:      db.Collection(CollectionJobs),
		events:    db.Collection(CollectionEvents),

		aliases:      db.Collection(CollectionAliases),
		aliasHistory: db.Collection(CollectionAliasHistory),
	}
	if o.EnsureIndexes {
		if err := s.EnsureIndexes(ctx); err != nil {
			return nil, err
		}
	} else if err := s.checkIndexes(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// DatabaseNameProblem returns why MongoDB would refuse name as a database
// name, or "" when it accepts it: a name is 1 to 63 bytes without / \ . "
// $ * < > : | ? space or NUL. [Open] refuses such names at once rather
// than at the first write.
func DatabaseNameProblem(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) >= 64:
		return fmt.Sprintf("must be shorter than 64 bytes (it has %d)", len(name))
	}
	if i := strings.IndexAny(name, "/\\. \"$*<>:|?\x00"); i >= 0 {
		return fmt.Sprintf("must not contain %q", name[i])
	}
	return ""
}

// applyJobDefaults fills in and checks the job options of o.
func (o *Options) applyJobDefaults() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"job_backoff_base", int64(o.JobBackoffBase)}, {"job_backoff_max", int64(o.JobBackoffMax)}, {"job_log_tail", int64(o.JobLogTail)}} {
		if f.v < 0 {
			return invalidf("store", f.name, "must not be negative (0 takes the default)")
		}
	}
	if o.JobBackoffBase == 0 {
		o.JobBackoffBase = JobBackoffBaseDefault
	}
	if o.JobBackoffMax == 0 {
		o.JobBackoffMax = max(JobBackoffMaxDefault, o.JobBackoffBase)
	}
	if o.JobLogTail == 0 {
		o.JobLogTail = JobLogTailDefault
	}
	if o.JobBackoffMax < o.JobBackoffBase {
		return invalidf("store", "job_backoff_max", "must be at least JobBackoffBase (%s)", o.JobBackoffBase)
	}
	return nil
}

// Capabilities returns what Open detected about the deployment.
func (s *Store) Capabilities() Capabilities { return s.caps }

// Database returns the database the Store works on.
func (s *Store) Database() *mongo.Database { return s.db }

// Now returns the Store's current time, truncated to the millisecond that
// BSON dates keep, in UTC.
func (s *Store) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// DetectCapabilities finds out what the deployment behind db does, as
// [Open] does for its [Store.Capabilities]: hello tells the topology and
// whether it has logical sessions; collMod on a collection that does not
// exist tells whether it keeps validators (NamespaceNotFound, where a
// server without them answers that it has no such command); and a find
// whose filter compares with $$NOW tells whether it has its own clock.
// The server's name decides nothing: FerretDB behind harmonia's embedded
// front has transactions and validators in its replica-set mode, and
// $$NOW in both modes. It reads and writes nothing in db.
//
// Errors: [CodeInternal] when the server cannot be reached.
func DetectCapabilities(ctx context.Context, db *mongo.Database) (Capabilities, error) {
	admin := db.Client().Database("admin")
	var hello struct {
		SetName        string `bson:"setName"`
		Msg            string `bson:"msg"`
		MaxWireVersion int    `bson:"maxWireVersion"`
		Sessions       *int   `bson:"logicalSessionTimeoutMinutes"`
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return Capabilities{}, wrapErr("store", "hello", err)
	}
	var build struct {
		Version         string `bson:"version"`
		FerretDBVersion string `bson:"ferretdbVersion"`
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build); err != nil {
		return Capabilities{}, wrapErr("store", "buildInfo", err)
	}
	c := Capabilities{Topology: "standalone", ServerVersion: build.Version, FerretDB: build.FerretDBVersion != ""}
	switch {
	case hello.Msg == "isdbgrid":
		c.Topology = "sharded"
		c.Transactions = hello.MaxWireVersion >= 8 // MongoDB 4.2
	case hello.SetName != "":
		c.Topology = "replica_set"
		c.Transactions = hello.MaxWireVersion >= 7 // MongoDB 4.0
	}
	c.Transactions = c.Transactions && hello.Sessions != nil
	err := db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "harmonia_capability_probe"}, {Key: "validationLevel", Value: "strict"}}).Err()
	var ce mongo.CommandError
	switch {
	case err == nil:
		c.Validators = true
	case errors.As(err, &ce):
		c.Validators = ce.Code == 26 // NamespaceNotFound
	default:
		return Capabilities{}, wrapErr("store", "collMod", err)
	}
	if c.ServerClock, err = probeServerClock(ctx, db); err != nil {
		return Capabilities{}, err
	}
	return c, nil
}
