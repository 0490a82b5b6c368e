package migrate

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
)

// EntityMigration names schema migrations in the errors of this package.
const EntityMigration = "schema_migration"

// Migration is one step of a database's schema history: a version, a name
// and the functions that apply and (optionally) revert it.
//
// Up and Down receive the context of the run: they must pass it to every
// operation (on a deployment with transactions it carries the session, and
// it is cancelled when the runner loses its lock or its caller gives up).
// Where a migration does not run in a transaction it must be idempotent: a
// run interrupted half-way is run again from the start by the next Up.
type Migration struct {
	// Version orders the migrations; it must be positive and unique.
	Version int64
	// Name says what the migration does. It is recorded with the version
	// and is part of the checksum: renaming an applied migration makes Up
	// refuse to go on (see the package documentation).
	Name string
	// Up applies the migration. Required.
	Up func(ctx context.Context, db *mongo.Database) error
	// Down reverts it; nil when the migration cannot be reverted.
	Down func(ctx context.Context, db *mongo.Database) error
	// NoTransaction runs the migration outside a transaction even on a
	// deployment that has them: for index builds (not allowed in a
	// transaction) and for long batch transforms (a transaction is limited
	// to about a minute). Such a migration must be idempotent.
	NoTransaction bool
}

// State is the state of a migration, stored as a stable string in its
// record in the schema_migrations collection.
type State string

// Migration states. StatePending is never stored: it is the state of a
// migration that has no record.
const (
	// StatePending: not applied yet.
	StatePending State = "pending"
	// StateRunning: a runner is applying it, or died applying it (then the
	// lock expires and the next Up runs it again).
	StateRunning State = "running"
	// StateApplied: applied successfully.
	StateApplied State = "applied"
	// StateFailed: Up or Down returned an error (recorded with the
	// record). Up and Down refuse to go on until Runner.Resolve clears it.
	StateFailed State = "failed"
	// StateInterrupted: the run was cancelled or lost its lock half-way;
	// the next Up runs the migration again.
	StateInterrupted State = "interrupted"
)

// Defaults of [Options].
const (
	// LockLeaseDefault is how long a lock lasts without renewal. A runner
	// renews it every third of the lease while it works; a crashed
	// runner's lock expires after at most this long.
	LockLeaseDefault = time.Minute
	// LockWaitDefault is how long Up, Down and Resolve wait for a lock
	// that another runner holds.
	LockWaitDefault = 5 * time.Minute
	// LockPollDefault is how often a waiting runner tries the lock again.
	LockPollDefault = 250 * time.Millisecond
)

// Options configures a [Runner]. The zero value is ready to use.
type Options struct {
	// Now returns the current time; it stamps records and the lock's
	// expiry, so tests set it to expire locks without waiting. Defaults
	// to time.Now.
	Now func() time.Time
	// Logger receives notices: migrations started and finished, locks
	// taken over from a crashed runner, records resolved. Defaults to a
	// logger that discards everything.
	Logger *slog.Logger
	// LockLease is the lock's lease. Defaults to LockLeaseDefault; at
	// least one second.
	LockLease time.Duration
	// LockWait bounds how long a call waits for a lock another runner
	// holds before it returns a [harmonia.CodeConflict] error. Defaults to
	// LockWaitDefault.
	LockWait time.Duration
	// LockPoll is how often a waiting call tries the lock again. Defaults
	// to LockPollDefault.
	LockPoll time.Duration
	// Owner names this runner in the lock and in the records. Defaults to
	// "hostname/pid/random".
	Owner string
}

// Runner applies an ordered list of migrations to one database. It is
// safe for concurrent use, and any number of runners, in any number of
// processes, may work on the same database: a lease lock lets one of them
// work at a time.
type Runner struct {
	db         *mongo.Database
	migrations []Migration
	opts       Options
	records    *mongo.Collection
	lockCol    *mongo.Collection

	mu   sync.Mutex
	caps *harmonia.Capabilities
}

// New returns a Runner for migrations on db. The migrations must be in
// strictly increasing order of Version, each with a positive version, a
// name and an Up function; New checks that and nothing else (it does not
// touch the database).
//
// Errors: [harmonia.CodeInvalid] naming the offending migration or option.
func New(db *mongo.Database, migrations []Migration, opts *Options) (*Runner, error) {
	if db == nil {
		return nil, invalidf("db", "a *mongo.Database is required")
	}
	for i, m := range migrations {
		field := fmt.Sprintf("migrations[%d]", i)
		switch {
		case m.Version <= 0:
			return nil, invalidf(field, "version %d must be positive", m.Version)
		case m.Name == "":
			return nil, invalidf(field, "version %d has no name", m.Version)
		case m.Up == nil:
			return nil, invalidf(field, "version %d (%s) has no Up function", m.Version, m.Name)
		case i > 0 && m.Version == migrations[i-1].Version:
			return nil, invalidf(field, "version %d appears twice (%q and %q)", m.Version, migrations[i-1].Name, m.Name)
		case i > 0 && m.Version < migrations[i-1].Version:
			return nil, invalidf(field, "version %d (%s) comes after version %d: list migrations in increasing order",
				m.Version, m.Name, migrations[i-1].Version)
		}
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.LockLease = cmp.Or(o.LockLease, LockLeaseDefault)
	o.LockWait = cmp.Or(o.LockWait, LockWaitDefault)
	o.LockPoll = cmp.Or(o.LockPoll, LockPollDefault)
	switch {
	case o.LockLease < time.Second:
		return nil, invalidf("LockLease", "must be at least one second (got %s)", o.LockLease)
	case o.LockWait < 0:
		return nil, invalidf("LockWait", "must not be negative")
	case o.LockPoll < 0:
		return nil, invalidf("LockPoll", "must not be negative")
	}
	if o.Owner == "" {
		o.Owner = defaultOwner()
	}
	return &Runner{
		db: db, migrations: slices.Clone(migrations), opts: o,
		records: db.Collection(harmonia.CollectionMigrations),
		lockCol: db.Collection(LockCollection),
	}, nil
}

func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b[:])
}

// Owner returns the name this runner writes into the lock and records.
func (r *Runner) Owner() string { return r.opts.Owner }

// Migrations returns a copy of the runner's migrations, in order.
func (r *Runner) Migrations() []Migration { return slices.Clone(r.migrations) }

// Checksum returns the checksum recorded for a migration: the SHA-256 of
// its version and name. Go functions cannot be hashed, so a changed body
// under the same version and name goes unnoticed; a rename does not.
func Checksum(m Migration) string {
	sum := sha256.Sum256([]byte(strconv.FormatInt(m.Version, 10) + "\x00" + m.Name))
	return hex.EncodeToString(sum[:])
}

// record is a migration's document in the schema_migrations collection.
type record struct {
	Version    int64            `bson:"version"`
	Name       string           `bson:"name"`
	Checksum   string           `bson:"checksum"`
	State      State            `bson:"state"`
	Owner      string           `bson:"owner"`
	Attempts   int              `bson:"attempts"`
	StartedAt  time.Time        `bson:"started_at"`
	AppliedAt  *time.Time       `bson:"applied_at,omitempty"`
	DurationMS int64            `bson:"duration_ms"`
	Error      string           `bson:"error,omitempty"`
	Counts     map[string]int64 `bson:"counts,omitempty"`
}

// UpOpts are the options of [Runner.Up]. A nil *UpOpts means the zero
// value.
type UpOpts struct {
	// To stops after this version; 0 means every migration. It must be
	// the version of one of the runner's migrations.
	To int64
	// DryRun reports what would run without taking the lock or writing
	// anything. It refuses exactly where a real run would, with the same
	// error.
	DryRun bool
}

// Step is one migration in a [Report].
type Step struct {
	// Version and Name identify the migration.
	Version int64
	Name    string
	// Resumed is true when an earlier run of this migration was
	// interrupted (cancelled, or its runner crashed) and this run
	// started it again.
	Resumed bool
	// Transaction is true when it ran inside a multi-document
	// transaction.
	Transaction bool
	// Duration is how long it ran (zero in a plan).
	Duration time.Duration
	// Counts are the figures it reported with [Count], for example
	// documents scanned and changed.
	Counts map[string]int64
	// Error is why it failed ("" when it did not).
	Error string
}

// Report says what a call of Up or Down did, or, for a dry run, would do.
type Report struct {
	// DryRun is true when nothing ran.
	DryRun bool
	// Planned lists the migrations the call meant to run, in order.
	Planned []Step
	// Applied lists the migrations Up applied, in order.
	Applied []Step
	// Reverted lists the migration Down reverted.
	Reverted []Step
	// Failed is the migration that failed, nil when none did.
	Failed *Step
	// Current is the highest applied version after the call (0: none).
	Current int64
}

// Up applies the pending migrations in order, up to opts.To, each at most
// once across every runner of the database. It takes the lock first
// (waiting up to Options.LockWait for another runner), and runs each
// migration in a transaction where the deployment has them (unless the
// migration says NoTransaction). A migration that was interrupted earlier
// (cancelled, or its runner crashed) is run again and reported as
// resumed. It stops at the first failure, records it, and returns it.
//
// Up refuses to run anything while a record is failed (see
// [Runner.Resolve]) or an applied migration's name differs from the
// runner's.
//
// Errors: [harmonia.CodeInvalid] (an unknown To), [harmonia.CodeConflict]
// (a failed record, a checksum mismatch, the lock held past LockWait, the
// lock lost), the failing migration's error wrapped in
// [harmonia.CodeInternal], [harmonia.CodeInternal].
func (r *Runner) Up(ctx context.Context, opts *UpOpts) (*Report, error) {
	var o UpOpts
	if opts != nil {
		o = *opts
	}
	if o.To != 0 && !slices.ContainsFunc(r.migrations, func(m Migration) bool { return m.Version == o.To }) {
		return nil, invalidf("To", "no migration with version %d", o.To)
	}
	if o.DryRun {
		recs, err := r.readRecords(ctx)
		if err != nil {
			return nil, err
		}
		rep := &Report{DryRun: true, Current: current(recs)}
		rep.Planned = r.plan(recs, o.To)
		return rep, r.refusal(recs)
	}
	var rep *Report
	err := r.locked(ctx, func(ctx context.Context) error {
		var err error
		rep, err = r.upLocked(ctx, o.To)
		return err
	})
	return rep, err
}

// upLocked applies the pending migrations up to to (0: all); the caller
// holds the lock.
func (r *Runner) upLocked(ctx context.Context, to int64) (*Report, error) {
	recs, err := r.readRecords(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{Planned: r.plan(recs, to)}
	if err := r.refusal(recs); err != nil {
		rep.Current = current(recs)
		return rep, err
	}
	for _, step := range rep.Planned {
		m := r.migration(step.Version)
		done, err := r.apply(ctx, m, recs[m.Version], step.Resumed)
		if err != nil {
			rep.Failed = &done
			return rep, err
		}
		rep.Applied = append(rep.Applied, done)
	}
	recs, err = r.readRecords(ctx)
	rep.Current = current(recs)
	return rep, err
}

// Down reverts the highest applied migration: one step. It takes the lock
// like Up. When nothing is applied it returns a report with nothing
// reverted. On success the migration's record is deleted (it is pending
// again); on failure the record is marked failed, and Up refuses to go on
// until [Runner.Resolve].
//
// Errors: [harmonia.CodeInvalid] (the migration has no Down),
// [harmonia.CodeConflict] (a failed record, the lock), the Down function's
// error wrapped in [harmonia.CodeInternal], [harmonia.CodeInternal].
func (r *Runner) Down(ctx context.Context) (*Report, error) { return r.DownSteps(ctx, 1) }

// DownSteps reverts the n highest applied migrations, highest first, as
// golang-migrate's "down N" does; n ≤ 0 reverts every applied one. It
// holds the lock for the whole call and stops at the first migration that
// has no Down or whose Down fails (the migrations above it stay
// reverted), as [Runner.Down] does for one.
//
// Errors: as [Runner.Down].
func (r *Runner) DownSteps(ctx context.Context, n int) (*Report, error) {
	var rep *Report
	err := r.locked(ctx, func(ctx context.Context) error {
		var err error
		rep, err = r.downTo(ctx, func(reverted int, _ int64) bool { return n > 0 && reverted >= n })
		return err
	})
	return rep, err
}

// Goto migrates to version exactly, as golang-migrate's "goto V" does:
// up through the pending migrations up to it when it is above the current
// version, down through the applied ones above it (highest first) when it
// is below; 0 reverts everything. version must be 0 or the version of
// one of the runner's migrations.
//
// Errors: [harmonia.CodeInvalid] (an unknown version, a migration to
// revert without Down), and those of [Runner.Up] and [Runner.Down].
func (r *Runner) Goto(ctx context.Context, version int64) (*Report, error) {
	if version != 0 && r.migration(version) == nil {
		return nil, invalidf("version", "no migration with version %d", version)
	}
	var rep *Report
	err := r.locked(ctx, func(ctx context.Context) error {
		recs, err := r.readRecords(ctx)
		if err != nil {
			return err
		}
		if version != 0 && len(r.plan(recs, version)) > 0 {
			rep, err = r.upLocked(ctx, version)
			if err != nil || current(recs) <= version {
				return err
			}
		}
		down, err := r.downTo(ctx, func(_ int, next int64) bool { return next <= version })
		if rep == nil {
			rep = down
		} else if down != nil {
			rep.Planned = append(rep.Planned, down.Planned...)
			rep.Reverted, rep.Failed, rep.Current = down.Reverted, down.Failed, down.Current
		}
		return err
	})
	return rep, err
}

// downTo reverts applied migrations, highest first, until stop says so:
// stop gets how many it reverted and the version it would revert next.
// The caller holds the lock.
func (r *Runner) downTo(ctx context.Context, stop func(reverted int, next int64) bool) (*Report, error) {
	recs, err := r.readRecords(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{Current: current(recs)}
	if err := r.refusal(recs); err != nil {
		return rep, err
	}
	for i := len(r.migrations) - 1; i >= 0; i-- {
		m := r.migrations[i]
		if rec := recs[m.Version]; rec == nil || rec.State != StateApplied {
			continue
		}
		if stop(len(rep.Reverted), m.Version) {
			break
		}
		if m.Down == nil {
			return rep, invalidf("Down", "migration %d (%s) has no Down function", m.Version, m.Name)
		}
		rep.Planned = append(rep.Planned, Step{Version: m.Version, Name: m.Name})
		done, err := r.revert(ctx, m)
		if err != nil {
			rep.Failed = &done
			return rep, err
		}
		rep.Reverted = append(rep.Reverted, done)
	}
	recs, err = r.readRecords(ctx)
	if err != nil {
		return rep, err
	}
	rep.Current = current(recs)
	return rep, nil
}

// Force records the database as being at version, without running any
// migration, as golang-migrate's "force V" does after a person has
// repaired a failed run by hand: every migration up to version is
// recorded as applied (its record says it was forced), every record above
// it is deleted, and failed records are cleared. version must be 0 (no
// migration applied) or the version of one of the runner's migrations.
// It takes the lock like Up. The data is not touched.
//
// Errors: [harmonia.CodeInvalid] (an unknown version),
// [harmonia.CodeConflict] (the lock), [harmonia.CodeInternal].
func (r *Runner) Force(ctx context.Context, version int64) error {
	if version != 0 && r.migration(version) == nil {
		return invalidf("version", "no migration with version %d", version)
	}
	return r.locked(ctx, func(ctx context.Context) error {
		recs, err := r.readRecords(ctx)
		if err != nil {
			return err
		}
		if _, err := r.records.DeleteMany(ctx, bson.D{{Key: "version", Value: bson.D{{Key: "$gt", Value: version}}}}); err != nil {
			return internal("force: delete records", err)
		}
		now := r.now()
		for _, m := range r.migrations {
			if m.Version > version {
				break
			}
			rec := recs[m.Version]
			if rec != nil && rec.State == StateApplied && rec.Checksum == Checksum(m) {
				continue
			}
			msg := "forced to applied without running"
			if rec != nil && rec.Error != "" {
				msg += "; last error: " + rec.Error
			}
			if _, err := r.records.UpdateOne(ctx, bson.D{{Key: "version", Value: m.Version}}, bson.D{{Key: "$set", Value: bson.D{
				{Key: "name", Value: m.Name}, {Key: "checksum", Value: Checksum(m)}, {Key: "state", Value: StateApplied},
				{Key: "owner", Value: r.opts.Owner}, {Key: "applied_at", Value: now}, {Key: "error", Value: msg},
			}}}, options.UpdateOne().SetUpsert(true)); err != nil {
				return internal("force: record migration", err)
			}
		}
		r.opts.Logger.InfoContext(ctx, "migrate: forced version", "version", version)
		return nil
	})
}

// ResolveOpts are the options of [Runner.Resolve]. A nil *ResolveOpts
// means the zero value.
type ResolveOpts struct {
	// MarkApplied records the migration as applied instead of clearing
	// its record: for when a person finished its work by hand and it must
	// not run again.
	MarkApplied bool
}

// Resolve clears the failed (or interrupted, or stale running) record of
// the migration with version, after a person has looked at its error and
// repaired what needed repair. By default the record is deleted, so the
// migration is pending again and the next Up runs it (migrations are
// idempotent or transactional, so that is safe); with MarkApplied it is
// recorded as applied without running. Resolve takes the lock like Up, so
// it cannot clear the record of a migration that is running.
//
// Errors: [harmonia.CodeNotFound] (no record for version),
// [harmonia.CodeInvalid] (the record is applied: nothing to resolve),
// [harmonia.CodeConflict] (the lock), [harmonia.CodeInternal].
func (r *Runner) Resolve(ctx context.Context, version int64, opts *ResolveOpts) error {
	var o ResolveOpts
	if opts != nil {
		o = *opts
	}
	return r.locked(ctx, func(ctx context.Context) error {
		recs, err := r.readRecords(ctx)
		if err != nil {
			return err
		}
		rec := recs[version]
		switch {
		case rec == nil:
			return &harmonia.Error{Code: harmonia.CodeNotFound, Entity: EntityMigration, Field: "version",
				Reason: fmt.Sprintf("no record of migration %d", version)}
		case rec.State == StateApplied:
			return invalidf("version", "migration %d is applied: nothing to resolve", version)
		}
		filter := bson.D{{Key: "version", Value: version}, {Key: "state", Value: rec.State}}
		if o.MarkApplied {
			now := r.now()
			_, err = r.records.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{
				{Key: "state", Value: StateApplied}, {Key: "applied_at", Value: now}, {Key: "owner", Value: r.opts.Owner},
				{Key: "error", Value: "resolved as applied by hand; last error: " + rec.Error},
			}}})
		} else {
			_, err = r.records.DeleteOne(ctx, filter)
		}
		if err != nil {
			return internal("resolve", err)
		}
		r.opts.Logger.InfoContext(ctx, "migrate: resolved migration", "version", version, "name", rec.Name,
			"was", rec.State, "error", rec.Error, "mark_applied", o.MarkApplied)
		return nil
	})
}

// MigrationStatus is the state of one migration in a [Status].
type MigrationStatus struct {
	// Version and Name identify the migration (Name is the recorded one
	// for an unknown version).
	Version int64
	Name    string
	// State is StatePending when the migration has no record.
	State State
	// Known is false for a record whose version is not in the runner's
	// list (applied by another program, or by a newer version of this
	// one).
	Known bool
	// ChecksumMismatch is true when the record's name differs from the
	// runner's migration of that version.
	ChecksumMismatch bool
	// RecordedName is the name in the record, when there is one.
	RecordedName string
	// Owner is the runner that last ran it; Attempts counts its runs
	// since its record was created.
	Owner    string
	Attempts int
	// StartedAt is when its last run began, AppliedAt when it was applied
	// (zero when it is not), Duration how long its last run took.
	StartedAt time.Time
	AppliedAt time.Time
	Duration  time.Duration
	// Error is why its last run failed or was interrupted.
	Error string
	// Counts are the figures its last run reported with [Count].
	Counts map[string]int64
}

// LockStatus describes the lock in a [Status].
type LockStatus struct {
	// Owner is the holder's Options.Owner.
	Owner string
	// AcquiredAt is when it took the lock, ExpiresAt when the lease ends
	// unless renewed.
	AcquiredAt time.Time
	ExpiresAt  time.Time
	// Expired is true when the lease has run out: its holder crashed or
	// hangs, and the next runner takes it over.
	Expired bool
}

// Status is the state of every migration of a database.
type Status struct {
	// Migrations lists the runner's migrations in order, then records of
	// unknown versions.
	Migrations []MigrationStatus
	// Current is the highest applied version (0: none).
	Current int64
	// Pending, Failed and Interrupted count the runner's migrations in
	// those states (a stale running record counts as interrupted when the
	// lock is free or expired).
	Pending, Failed, Interrupted int
	// Lock is the lock, nil when nobody holds it.
	Lock *LockStatus
}

// Status reads the records and the lock. It takes no lock and writes
// nothing.
//
// Errors: [harmonia.CodeInternal].
func (r *Runner) Status(ctx context.Context) (*Status, error) {
	recs, err := r.readRecords(ctx)
	if err != nil {
		return nil, err
	}
	lock, err := r.lockStatus(ctx)
	if err != nil {
		return nil, err
	}
	st := &Status{Current: current(recs), Lock: lock}
	lockFree := lock == nil || lock.Expired
	for _, m := range r.migrations {
		ms := MigrationStatus{Version: m.Version, Name: m.Name, State: StatePending, Known: true}
		if rec := recs[m.Version]; rec != nil {
			fillStatus(&ms, rec)
			ms.ChecksumMismatch = rec.Checksum != Checksum(m)
		}
		switch {
		case ms.State == StatePending:
			st.Pending++
		case ms.State == StateFailed:
			st.Failed++
		case ms.State == StateInterrupted, ms.State == StateRunning && lockFree:
			st.Interrupted++
		}
		st.Migrations = append(st.Migrations, ms)
	}
	for _, v := range slices.Sorted(maps.Keys(recs)) {
		if r.migration(v) == nil {
			ms := MigrationStatus{Version: v, Name: recs[v].Name}
			fillStatus(&ms, recs[v])
			st.Migrations = append(st.Migrations, ms)
		}
	}
	return st, nil
}

func fillStatus(ms *MigrationStatus, rec *record) {
	ms.State, ms.RecordedName, ms.Owner, ms.Attempts = rec.State, rec.Name, rec.Owner, rec.Attempts
	ms.StartedAt, ms.Duration, ms.Error, ms.Counts = rec.StartedAt, time.Duration(rec.DurationMS)*time.Millisecond, rec.Error, rec.Counts
	if rec.AppliedAt != nil {
		ms.AppliedAt = *rec.AppliedAt
	}
}

func (r *Runner) now() time.Time { return r.opts.Now().UTC().Truncate(time.Millisecond) }

func (r *Runner) migration(version int64) *Migration {
	for i := range r.migrations {
		if r.migrations[i].Version == version {
			return &r.migrations[i]
		}
	}
	return nil
}

// readRecords reads every record, by version.
func (r *Runner) readRecords(ctx context.Context) (map[int64]*record, error) {
	cur, err := r.records.Find(ctx, bson.D{})
	if err != nil {
		return nil, internal("read records", err)
	}
	var list []*record
	if err := cur.All(ctx, &list); err != nil {
		return nil, internal("read records", err)
	}
	out := make(map[int64]*record, len(list))
	for _, rec := range list {
		out[rec.Version] = rec
	}
	return out, nil
}

// current returns the highest applied version of recs.
func current(recs map[int64]*record) int64 {
	var v int64
	for _, rec := range recs {
		if rec.State == StateApplied && rec.Version > v {
			v = rec.Version
		}
	}
	return v
}

// plan lists the migrations up to to (0: all) that have no record or an
// interrupted one. Called under the lock, a running record is one whose
// runner died.
func (r *Runner) plan(recs map[int64]*record, to int64) []Step {
	var steps []Step
	for _, m := range r.migrations {
		if to != 0 && m.Version > to {
			break
		}
		rec := recs[m.Version]
		if rec != nil && rec.State == StateApplied {
			continue
		}
		steps = append(steps, Step{Version: m.Version, Name: m.Name,
			Resumed: rec != nil && (rec.State == StateRunning || rec.State == StateInterrupted)})
	}
	return steps
}

// refusal returns why Up and Down must not proceed: a failed record, or a
// known migration recorded under another name.
func (r *Runner) refusal(recs map[int64]*record) error {
	for _, v := range slices.Sorted(maps.Keys(recs)) {
		rec := recs[v]
		if rec.State == StateFailed {
			return &harmonia.Error{Code: harmonia.CodeConflict, Entity: EntityMigration, Field: "state",
				Reason: fmt.Sprintf("migration %d (%s) failed at %s: %s; repair what it left and call Runner.Resolve(ctx, %d, nil) to run it again",
					v, rec.Name, rec.StartedAt.Format(time.RFC3339), rec.Error, v)}
		}
		if m := r.migration(v); m != nil && rec.Checksum != Checksum(*m) {
			return &harmonia.Error{Code: harmonia.CodeConflict, Entity: EntityMigration, Field: "checksum",
				Reason: fmt.Sprintf("migration %d is recorded as %q but this program calls it %q: a version must not be reused for another migration", v, rec.Name, m.Name)}
		}
	}
	return nil
}

// apply runs one migration's Up and records the outcome.
func (r *Runner) apply(ctx context.Context, m *Migration, prev *record, resumed bool) (Step, error) {
	step := Step{Version: m.Version, Name: m.Name, Resumed: resumed}
	if resumed {
		r.opts.Logger.WarnContext(ctx, "migrate: running an interrupted migration again", "version", m.Version, "name", m.Name,
			"previous_owner", prev.Owner, "previous_start", prev.StartedAt, "previous_error", prev.Error)
	}
	start := r.now()
	attempts := 1
	if prev != nil {
		attempts = prev.Attempts + 1
	}
	if _, err := r.records.UpdateOne(ctx, bson.D{{Key: "version", Value: m.Version}}, bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "name", Value: m.Name}, {Key: "checksum", Value: Checksum(*m)}, {Key: "state", Value: StateRunning},
			{Key: "owner", Value: r.opts.Owner}, {Key: "attempts", Value: attempts}, {Key: "started_at", Value: start},
		}},
		{Key: "$unset", Value: bson.D{{Key: "error", Value: ""}, {Key: "counts", Value: ""}, {Key: "applied_at", Value: ""}}},
	}, options.UpdateOne().SetUpsert(true)); err != nil {
		return step, internal("record start", err)
	}
	r.opts.Logger.InfoContext(ctx, "migrate: applying", "version", m.Version, "name", m.Name)
	cnt := &counter{}
	finish := func(ctx context.Context) error {
		now := r.now()
		step.Duration, step.Counts = now.Sub(start), cnt.snapshot()
		return r.setState(ctx, m.Version, StateApplied, "", now, step.Duration, step.Counts)
	}
	err := r.execute(ctx, m, m.Up, cnt, finish, &step)
	if err == nil {
		r.opts.Logger.InfoContext(ctx, "migrate: applied", "version", m.Version, "name", m.Name, "duration", step.Duration, "counts", step.Counts)
		return step, nil
	}
	return step, r.recordFailure(ctx, &step, start, cnt, "", err)
}

// revert runs one migration's Down and records the outcome.
func (r *Runner) revert(ctx context.Context, m Migration) (Step, error) {
	step := Step{Version: m.Version, Name: m.Name}
	start := r.now()
	cnt := &counter{}
	remove := func(ctx context.Context) error {
		if _, err := r.records.DeleteOne(ctx, bson.D{{Key: "version", Value: m.Version}}); err != nil {
			return internal("delete record", err)
		}
		step.Duration, step.Counts = r.now().Sub(start), cnt.snapshot()
		return nil
	}
	err := r.execute(ctx, &m, m.Down, cnt, remove, &step)
	if err == nil {
		r.opts.Logger.InfoContext(ctx, "migrate: reverted", "version", m.Version, "name", m.Name, "duration", step.Duration)
		return step, nil
	}
	return step, r.recordFailure(ctx, &step, start, cnt, "down: ", err)
}

// execute runs fn (m's Up or Down) and then record, together in one
// transaction where m runs in one (record then commits with the
// migration's writes). It sets step.Transaction.
func (r *Runner) execute(ctx context.Context, m *Migration, fn func(context.Context, *mongo.Database) error,
	cnt *counter, record func(context.Context) error, step *Step) error {
	txn, err := r.useTransaction(ctx, m)
	if err != nil {
		return err
	}
	step.Transaction = txn
	run := func(ctx context.Context) error {
		cnt.reset()
		if err := call(withCounter(ctx, cnt), fn, r.db); err != nil {
			return err
		}
		return record(ctx)
	}
	if txn {
		return r.inTransaction(ctx, run)
	}
	return run(ctx)
}

// recordFailure records a failed or interrupted run and returns the error
// to report. An error while the run's context is done is an interruption
// (Up runs the migration again); any other error is a failure. A failed
// Down is always a failure: nobody can tell what it left.
func (r *Runner) recordFailure(ctx context.Context, step *Step, start time.Time, cnt *counter, prefix string, runErr error) error {
	interrupted := ctx.Err() != nil && prefix == ""
	if cause := context.Cause(ctx); interrupted && cause != nil && !errors.Is(runErr, cause) {
		runErr = fmt.Errorf("%w (%w)", runErr, cause)
	}
	now := r.now()
	step.Duration, step.Counts, step.Error = now.Sub(start), cnt.snapshot(), prefix+runErr.Error()
	state := StateFailed
	if interrupted {
		state = StateInterrupted
	}
	r.opts.Logger.ErrorContext(ctx, "migrate: migration "+string(state), "version", step.Version, "name", step.Name, "error", step.Error)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := r.setState(wctx, step.Version, state, step.Error, now, step.Duration, step.Counts); err != nil {
		return errors.Join(wrapRun(step, runErr), err)
	}
	return wrapRun(step, runErr)
}

// recordTimeout bounds the writes that record a failure after the run's
// context is gone.
const recordTimeout = 10 * time.Second

func wrapRun(step *Step, err error) error {
	var he *harmonia.Error
	if errors.As(err, &he) {
		return fmt.Errorf("migrate: migration %d (%s): %w", step.Version, step.Name, err)
	}
	return &harmonia.Error{Code: harmonia.CodeInternal, Entity: EntityMigration, Field: strconv.FormatInt(step.Version, 10),
		Reason: fmt.Sprintf("migration %d (%s) failed: %v", step.Version, step.Name, err), Err: err}
}

func (r *Runner) setState(ctx context.Context, version int64, state State, msg string, now time.Time, d time.Duration, counts map[string]int64) error {
	set := bson.D{{Key: "state", Value: state}, {Key: "duration_ms", Value: d.Milliseconds()}}
	if state == StateApplied {
		set = append(set, bson.E{Key: "applied_at", Value: now})
	}
	if msg != "" {
		set = append(set, bson.E{Key: "error", Value: msg})
	}
	if len(counts) > 0 {
		set = append(set, bson.E{Key: "counts", Value: counts})
	}
	if _, err := r.records.UpdateOne(ctx, bson.D{{Key: "version", Value: version}}, bson.D{{Key: "$set", Value: set}}); err != nil {
		return internal("record "+string(state), err)
	}
	return nil
}

// call runs f, turning a panic into an error.
func call(ctx context.Context, f func(context.Context, *mongo.Database) error, db *mongo.Database) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return f(ctx, db)
}

// useTransaction reports whether m runs in a transaction here, detecting
// the deployment's capabilities once.
func (r *Runner) useTransaction(ctx context.Context, m *Migration) (bool, error) {
	if m.NoTransaction {
		return false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.caps == nil {
		caps, err := harmonia.DetectCapabilities(ctx, r.db)
		if err != nil {
			return false, err
		}
		r.caps = &caps
	}
	return r.caps.Transactions, nil
}

// inTransaction runs f in one transaction; f may run several times.
func (r *Runner) inTransaction(ctx context.Context, f func(ctx context.Context) error) error {
	sess, err := r.db.Client().StartSession()
	if err != nil {
		return internal("start session", err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) { return nil, f(ctx) })
	return err
}

// ensureRecordIndex creates the unique index on schema_migrations.version
// (the same one harmonia.EnsureIndexes creates) when it is missing.
func (r *Runner) ensureRecordIndex(ctx context.Context) error {
	specs, err := r.records.Indexes().ListSpecifications(ctx)
	if err != nil {
		return internal("list indexes", err)
	}
	for _, ix := range harmonia.Indexes() {
		if ix.Collection != harmonia.CollectionMigrations || slices.ContainsFunc(specs, func(s mongo.IndexSpecification) bool { return s.Name == ix.Name }) {
			continue
		}
		if _, err := r.records.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.Keys,
			Options: options.Index().SetName(ix.Name).SetUnique(ix.Unique)}); err != nil {
			return internal("create index "+ix.Name, err)
		}
	}
	return nil
}

// counter collects the figures a migration reports with Count.
type counter struct {
	mu sync.Mutex
	m  map[string]int64
}

type counterKey struct{}

func withCounter(ctx context.Context, c *counter) context.Context {
	return context.WithValue(ctx, counterKey{}, c)
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

func (c *counter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return nil
	}
	return maps.Clone(c.m)
}

// Count adds n to the figure called name of the migration running with
// ctx: documents scanned, changed, skipped... The figures are reported in
// the run's [Report], logged, and stored in the migration's record. Outside
// a migration run it does nothing. The name is stored as a field name, so
// dots become underscores and leading dollar signs are dropped.
func Count(ctx context.Context, name string, n int64) {
	c, ok := ctx.Value(counterKey{}).(*counter)
	if !ok {
		return
	}
	name = strings.ReplaceAll(strings.TrimLeft(name, "$"), ".", "_")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]int64)
	}
	c.m[name] += n
}

func invalidf(field, format string, args ...any) *harmonia.Error {
	reason := fmt.Sprintf(format, args...)
	return &harmonia.Error{Code: harmonia.CodeInvalid, Entity: EntityMigration, Field: field, Reason: reason,
		Fields: []harmonia.FieldError{{Field: field, Reason: reason}}}
}

func internal(op string, err error) error {
	var he *harmonia.Error
	if errors.As(err, &he) {
		return err
	}
	reason := op + " failed"
	switch {
	case errors.Is(err, context.Canceled):
		reason = op + ": context canceled"
	case errors.Is(err, context.DeadlineExceeded):
		reason = op + ": context deadline exceeded"
	}
	return &harmonia.Error{Code: harmonia.CodeInternal, Entity: EntityMigration, Reason: reason, Err: err}
}
