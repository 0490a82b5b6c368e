package worker

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/harmonia-ml/harmonia"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CollectionSchedules holds one document per schedule of a [Scheduler]:
// the last period it enqueued and who holds it.
const CollectionSchedules = "schedules"

// EntitySchedule names a schedule or a scheduler in errors.
const EntitySchedule = "schedule"

// Defaults of [SchedulerOptions].
const (
	// SchedulerPollIntervalDefault is how often a Scheduler looks at its
	// schedules when no period starts sooner.
	SchedulerPollIntervalDefault = 10 * time.Second
	// SchedulerClaimTimeoutDefault is how long the process that won a
	// period has to enqueue its jobs before another takes over.
	SchedulerClaimTimeoutDefault = time.Minute
)

// Period is one period of a [Schedule]: from Start (an activation time of
// the schedule) to End (the next one).
type Period struct {
	Start, End time.Time
}

// Key is the unique key of the period's job: "schedule:", the schedule's
// name, ":" and the period's start in UTC, for example
// "schedule:audit:20261127T030000.000Z".
func (p Period) Key(schedule string) string {
	return "schedule:" + schedule + ":" + p.Start.UTC().Format("20060102T150405.000Z")
}

// Schedule is recurring work: once per period, one process of all those
// running a [Scheduler] with it enqueues its jobs.
type Schedule struct {
	// Name identifies the schedule across processes: every process that
	// runs it must give it the same name, period and jobs. Lowercase
	// letters, digits, _ . - and starting with a letter. Required.
	Name string
	// Every makes periods of this length, aligned on multiples of it
	// since the zero time (so every process agrees on them): with an
	// hour, periods start on the hour. Give Every or Cron, not both.
	Every time.Duration
	// Cron makes periods from one activation to the next of a standard
	// five-field crontab line ("0 3 * * *") or a descriptor ("@daily"),
	// evaluated in UTC unless it starts with CRON_TZ=<zone>. "@every" is
	// refused: its activations depend on when it is asked; use Every.
	Cron string
	// Type and Params are the job each period enqueues, with Opts (whose
	// UniqueKey the scheduler sets to the period's [Period.Key]). Type is
	// required unless Jobs is set.
	Type   harmonia.JobType
	Params any
	Opts   *harmonia.EnqueueOpts
	// Jobs, when set, returns the jobs of a period instead of Type and
	// Params, for example one per artifact. Each job's UniqueKey must be
	// set, distinct, and the same for the same work whenever Jobs is
	// called for the period: the scheduler prefixes it with the period's
	// key, so that a process taking over a period enqueues only the jobs
	// missing. Defaults to none.
	Jobs func(ctx context.Context, store *harmonia.Store, p Period) ([]harmonia.EnqueueParams, error)
}

// SchedulerOptions configures a [Scheduler]. Only Schedules is required.
type SchedulerOptions struct {
	// Schedules are the schedules to run. Required.
	Schedules []Schedule
	// ID names the scheduler in the schedules collection and its logs.
	// Defaults to "scheduler-" and a random suffix.
	ID string
	// PollInterval is how often the scheduler looks at its schedules when
	// no period starts sooner; it also bounds how soon it takes over a
	// period whose process stalled. Defaults to
	// SchedulerPollIntervalDefault.
	PollInterval time.Duration
	// ClaimTimeout is how long the process that won a period may take to
	// enqueue its jobs; after that, another process takes the period over
	// and enqueues the jobs still missing. Defaults to
	// SchedulerClaimTimeoutDefault.
	ClaimTimeout time.Duration
	// Logger receives the scheduler's notices (enqueued periods, errors
	// of Run's checks). Defaults to a logger that discards everything.
	Logger *slog.Logger
}

// SchedulerStats counts what a scheduler did since it was made.
type SchedulerStats struct {
	// Checks counts the checks of every schedule ([Scheduler.Check]).
	Checks int64
	// Periods counts the periods this scheduler won and enqueued.
	Periods int64
	// Jobs counts the jobs it enqueued.
	Jobs int64
}

// Scheduler enqueues the jobs of periodic [Schedule]s, each period's at
// most once across every process that runs a scheduler on the same
// database, whatever their number.
//
// # How a period is enqueued once
//
// Neither a leader nor unique keys alone: a leader elected with an
// expiring lease may lose its lease while it enqueues, and a job's unique
// key only holds while the job is pending or running, so a process that
// wakes late, after the period's job finished, could enqueue the period
// again. Instead each schedule has a document in the schedules
// collection with the last period claimed. A process claims a period with
// one compare-and-set (the stored period is earlier, or it is this one,
// unfinished, and its claim has expired); the losers do nothing. The
// winner enqueues the period's jobs under unique keys derived from the
// period ([Period.Key]) and marks the period done. Should it stall or
// crash in between, after ClaimTimeout another process takes the claim
// over, and enqueues only the jobs whose keys no job has yet: a period is
// enqueued once even across a crash. (Only a process stalled past
// ClaimTimeout that resumes while its period is taken over, and whose
// jobs had already finished, could enqueue a job twice; choose the
// timeout well above the time an enqueue takes.)
//
// Missed periods (no scheduler ran) are not caught up: a check enqueues
// the latest period that has started. A schedule's first check enqueues
// the period under way.
type Scheduler struct {
	store     *harmonia.Store
	cfg       SchedulerOptions
	log       *slog.Logger
	schedules []schedule
	running   atomic.Bool
	stats     struct{ checks, periods, jobs atomic.Int64 }
	// afterEnqueue runs between a period's enqueue and its done mark;
	// harmonia's tests stop there as a crash would.
	afterEnqueue func(name string)
	mu           sync.Mutex
}

// schedule is a checked Schedule with its period arithmetic.
type schedule struct {
	Schedule
	// next returns the first activation after t.
	next func(t time.Time) time.Time
	// latest returns the latest activation at or before t.
	latest func(t time.Time) time.Time
}

// NewScheduler returns a scheduler for the schedules of opts on store.
//
// Errors: [harmonia.CodeInvalid] naming the field to fix (entity "schedule").
func NewScheduler(store *harmonia.Store, opts *SchedulerOptions) (*Scheduler, error) {
	if store == nil {
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "store", "a *Store is required (from harmonia.Open)")
	}
	if opts == nil || len(opts.Schedules) == 0 {
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "schedules", "give at least one schedule")
	}
	cfg := *opts
	if cfg.PollInterval < 0 || cfg.ClaimTimeout < 0 {
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "poll_interval", "PollInterval and ClaimTimeout must not be negative (0 takes the default)")
	}
	cfg.PollInterval = cmp.Or(cfg.PollInterval, SchedulerPollIntervalDefault)
	cfg.ClaimTimeout = cmp.Or(cfg.ClaimTimeout, SchedulerClaimTimeoutDefault)
	cfg.ID = cmp.Or(cfg.ID, "scheduler-"+rand.Text()[:12])
	sc := &Scheduler{store: store, cfg: cfg, log: cmp.Or(cfg.Logger, discard)}
	seen := map[string]bool{}
	for _, s := range cfg.Schedules {
		c, err := checkSchedule(s)
		if err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "name", "schedule %q is given twice", s.Name)
		}
		seen[s.Name] = true
		sc.schedules = append(sc.schedules, c)
	}
	return sc, nil
}

// checkSchedule checks s and works out its periods.
func checkSchedule(s Schedule) (schedule, error) {
	c := schedule{Schedule: s}
	switch {
	case !harmonia.JobType(s.Name).Valid() || len(s.Name) > 64:
		return c, harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "name", "schedule name %q must be 1 to 64 lowercase letters, digits, _ . - and start with a letter", s.Name)
	case s.Jobs == nil && !s.Type.Valid():
		return c, harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "type", "schedule %s: job type %q must be lowercase letters, digits, _ . - and start with a letter", s.Name, s.Type)
	case (s.Every == 0) == (s.Cron == ""):
		return c, harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "every", "schedule %s: give either Every or Cron", s.Name)
	case s.Every < 0 || (s.Every > 0 && s.Every%time.Millisecond != 0):
		return c, harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "every", "schedule %s: Every must be a positive whole number of milliseconds (got %s)", s.Name, s.Every)
	}
	if s.Every > 0 {
		c.latest = func(t time.Time) time.Time { return t.Truncate(s.Every) }
		c.next = func(t time.Time) time.Time { return t.Truncate(s.Every).Add(s.Every) }
		return c, nil
	}
	parsed, err := cron.ParseStandard(s.Cron)
	if err != nil {
		e := harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "cron", "schedule %s: %v", s.Name, err)
		e.Err = err
		return c, e
	}
	if _, ok := parsed.(cron.ConstantDelaySchedule); ok {
		return c, harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "cron", "schedule %s: @every is not allowed, its periods depend on when it is asked: use Every", s.Name)
	}
	c.next = func(t time.Time) time.Time { return parsed.Next(t.UTC()) }
	c.latest = func(t time.Time) time.Time { return latestActivation(c.next, t) }
	return c, nil
}

// latestActivation returns the latest time at or before t that next
// yields, looking back over windows that double from a minute until one
// holds an activation (zero when none lies in the last ten years).
func latestActivation(next func(time.Time) time.Time, t time.Time) time.Time {
	for back := time.Minute; back < 10*366*24*time.Hour; back *= 2 {
		p := next(t.Add(-back - time.Second))
		if p.IsZero() || p.After(t) {
			continue
		}
		for {
			n := next(p)
			if n.IsZero() || n.After(t) {
				return p
			}
			p = n
		}
	}
	return time.Time{}
}

// ID returns the scheduler's id, the owner of the periods it claims.
func (sc *Scheduler) ID() string { return sc.cfg.ID }

// Stats returns what the scheduler did so far.
func (sc *Scheduler) Stats() SchedulerStats {
	return SchedulerStats{Checks: sc.stats.checks.Load(), Periods: sc.stats.periods.Load(), Jobs: sc.stats.jobs.Load()}
}

// Run checks the schedules until ctx is cancelled: at each period's start
// and at least every PollInterval, on the Store's clock. Errors of a
// check are logged and the check retried at the next wake-up. It returns
// nil once ctx is cancelled.
//
// Errors: [harmonia.CodeConflict] when the scheduler runs already.
func (sc *Scheduler) Run(ctx context.Context) error {
	if !sc.running.CompareAndSwap(false, true) {
		return harmonia.Errorf(harmonia.CodeConflict, EntitySchedule, "id", "scheduler %s is running already", sc.cfg.ID)
	}
	defer sc.running.Store(false)
	for ctx.Err() == nil {
		if err := sc.Check(ctx); err != nil && ctx.Err() == nil {
			sc.log.WarnContext(ctx, "harmonia: schedule check failed", "scheduler", sc.cfg.ID, "err", err)
		}
		now := sc.store.Now()
		wait := sc.cfg.PollInterval
		for _, s := range sc.schedules {
			wait = min(wait, s.next(now).Sub(now))
		}
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// Check looks at every schedule once and enqueues the jobs of each
// period that has started and that no process has enqueued yet (or whose
// claim expired unfinished). Run calls it; call it yourself to drive the
// schedules from your own loop. Checks of one Scheduler run one at a
// time.
//
// Errors: [harmonia.CodeInvalid] (a schedule's jobs are refused by Enqueue),
// [harmonia.CodeInternal]; the schedules after a failed one are still checked,
// and the errors joined.
func (sc *Scheduler) Check(ctx context.Context) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.stats.checks.Add(1)
	var errs []error
	for _, s := range sc.schedules {
		if err := sc.check(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// check claims the due period of s, if it is free, and enqueues its jobs.
func (sc *Scheduler) check(ctx context.Context, s schedule) error {
	now := sc.store.Now()
	start := s.latest(now)
	if start.IsZero() {
		return nil
	}
	p := Period{Start: start.UTC(), End: s.next(start).UTC()}
	token, err := sc.claim(ctx, s.Name, p.Start, now)
	if err != nil || token == "" {
		return err
	}
	jobs, err := s.jobsOf(ctx, sc.store, p)
	if err != nil {
		return err
	}
	jobs, err = missingKeys(ctx, sc.store, jobs)
	if err != nil {
		return err
	}
	if len(jobs) > 0 {
		if _, err := sc.store.Queue().EnqueueMany(ctx, jobs); err != nil {
			return err
		}
	}
	if sc.afterEnqueue != nil {
		sc.afterEnqueue(s.Name)
	}
	_, err = sc.store.Database().Collection(CollectionSchedules).UpdateOne(ctx, bson.D{{Key: "_id", Value: s.Name}, {Key: "token", Value: token}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}, {Key: "updated_at", Value: sc.store.Now()}}}})
	if err != nil {
		return harmonia.DriverError(EntitySchedule, "mark period done", err)
	}
	sc.stats.periods.Add(1)
	sc.stats.jobs.Add(int64(len(jobs)))
	sc.log.InfoContext(ctx, "harmonia: enqueued a scheduled period", "schedule", s.Name, "period", p.Start, "jobs", len(jobs), "scheduler", sc.cfg.ID)
	return nil
}

// claim takes period start of schedule name for this scheduler with one
// compare-and-set, and returns the claim's token; "" when another
// process has the period (done, or claimed and not expired).
func (sc *Scheduler) claim(ctx context.Context, name string, start, now time.Time) (string, error) {
	token := rand.Text()
	filter := bson.D{{Key: "_id", Value: name}, {Key: "$or", Value: bson.A{
		bson.D{{Key: "period", Value: bson.D{{Key: "$lt", Value: start}}}},
		bson.D{{Key: "period", Value: start}, {Key: "done", Value: false}, {Key: "claim_expires_at", Value: bson.D{{Key: "$lt", Value: now}}}},
	}}}
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "schema_version", Value: harmonia.SchemaVersion}, {Key: "period", Value: start}, {Key: "done", Value: false},
		{Key: "token", Value: token}, {Key: "owner", Value: sc.cfg.ID},
		{Key: "claim_expires_at", Value: now.Add(sc.cfg.ClaimTimeout)}, {Key: "updated_at", Value: now},
	}}, {Key: "$setOnInsert", Value: bson.D{{Key: "created_at", Value: now}}}}
	_, err := sc.store.Database().Collection(CollectionSchedules).UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	switch {
	case mongo.IsDuplicateKeyError(err):
		return "", nil // the document exists and does not match: taken
	case err != nil:
		return "", harmonia.DriverError(EntitySchedule, "claim period", err)
	}
	return token, nil
}

// jobsOf returns the jobs of period p with their unique keys set.
func (s schedule) jobsOf(ctx context.Context, store *harmonia.Store, p Period) ([]harmonia.EnqueueParams, error) {
	key := p.Key(s.Name)
	if s.Jobs == nil {
		var o harmonia.EnqueueOpts
		if s.Opts != nil {
			o = *s.Opts
		}
		o.UniqueKey = key
		return []harmonia.EnqueueParams{{Type: s.Type, Params: s.Params, Opts: &o}}, nil
	}
	jobs, err := s.Jobs(ctx, store, p)
	if err != nil {
		return nil, fmt.Errorf("schedule %s, period %s: %w", s.Name, p.Start.Format(time.RFC3339Nano), err)
	}
	out := make([]harmonia.EnqueueParams, len(jobs))
	seen := make(map[string]bool, len(jobs))
	for i, j := range jobs {
		if j.Opts == nil || j.Opts.UniqueKey == "" || seen[j.Opts.UniqueKey] {
			return nil, harmonia.Errorf(harmonia.CodeInvalid, EntitySchedule, "jobs", "schedule %s: every job of a period needs its own UniqueKey (job %d)", s.Name, i)
		}
		seen[j.Opts.UniqueKey] = true
		o := *j.Opts
		o.UniqueKey = key + ":" + o.UniqueKey
		j.Opts = &o
		out[i] = j
	}
	return out, nil
}

// missingKeys returns the jobs whose unique keys no job carries, pending,
// running or finished, with one query.
func missingKeys(ctx context.Context, store *harmonia.Store, jobs []harmonia.EnqueueParams) ([]harmonia.EnqueueParams, error) {
	keys := make([]string, len(jobs))
	for i, j := range jobs {
		keys[i] = j.Opts.UniqueKey
	}
	have, err := store.Queue().JobKeysInUse(ctx, keys)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(jobs, func(j harmonia.EnqueueParams) bool { return have[j.Opts.UniqueKey] }), nil
}
