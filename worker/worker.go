package worker

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/harmonia-ml/harmonia"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults of [Options].
const (
	// ConcurrencyDefault is how many jobs a worker runs at once.
	ConcurrencyDefault = 4
	// LeaseDurationDefault is how long a claim holds a job without a
	// heartbeat.
	LeaseDurationDefault = 30 * time.Second
	// PollIntervalDefault is how long an idle worker waits before it looks
	// for jobs again.
	PollIntervalDefault = time.Second
	// ShutdownTimeoutDefault is how long a stopping worker waits for its
	// cancelled handlers to return.
	ShutdownTimeoutDefault = 30 * time.Second
	// BatchWaitDefault is how long a worker waits, once a handler has
	// returned, for its other handlers to return, so that it records
	// their outcomes and claims their successors together.
	BatchWaitDefault = 5 * time.Millisecond
)

// discard is the default logger of workers and schedulers, as of Stores:
// it drops everything.
var discard = slog.New(slog.DiscardHandler)

// EntityWorker names a worker in errors about its configuration.
const EntityWorker = "worker"

// workerWriteTimeout bounds a worker's own writes (claims, finishes,
// releases), which do not stop when its context is cancelled.
const workerWriteTimeout = 30 * time.Second

// errShutdown is the cause of a handler's context cancellation when its
// worker stops.
var errShutdown = errors.New("harmonia: worker shutting down")

// Handler runs one attempt of a job. It returns the job's result (a
// document, as for Enqueue's params, or nil) or an error; a [harmonia.Permanent]
// error fails the job without further attempts.
//
// ctx is cancelled when the worker stops or loses the job's lease
// ([context.Cause] tells which: [harmonia.ErrLeaseLost] for a lost lease); the
// handler should then return promptly. job is the handler's own copy.
// log appends lines to the job's log.
type Handler func(ctx context.Context, job *harmonia.Job, log *JobLogger) (result any, err error)

// JobLogger appends lines to the log of the job a handler runs. It is
// safe for concurrent use.
//
// A Worker's loggers buffer the lines and write them with the job's next
// heartbeat or its outcome: one insert into the events collection and the
// log tail in the same update, for all the jobs the worker writes at
// once. A worker that dies loses the lines since its last write, as it
// loses the attempt, which then runs again. A logger from [NewJobLogger]
// writes each line at once ([harmonia.Queue.AppendLog]).
type JobLogger struct {
	run  *runningJob // writes at once
	held *heldJob    // buffers for its worker's keeper
	keep *keeper
}

// NewJobLogger returns a logger for job, a job claimed with
// [harmonia.Queue.ClaimJob], for loops that run handlers themselves. The logger
// writes through job, which it then owns: it must not be used
// concurrently with other writes for the job.
func NewJobLogger(s *harmonia.Store, job *harmonia.Job) *JobLogger {
	return &JobLogger{run: &runningJob{store: s, job: job}}
}

// Log appends message at level to the job's log.
//
// Errors: [harmonia.CodeInvalid] (unknown level); with a logger from NewJobLogger,
// as [harmonia.Queue.AppendLog]; with a Worker's, the lease error that cancelled
// the handler, once the worker knows the lease lost.
func (l *JobLogger) Log(ctx context.Context, level harmonia.LogLevel, message string) error {
	if l.held != nil {
		return l.keep.log(l.held, level, message)
	}
	return l.run.write(func(s *harmonia.Store, j *harmonia.Job) error { return s.Queue().AppendLog(ctx, j, level, message) })
}

// Logf appends a formatted line at level to the job's log.
//
// Errors: as [JobLogger.Log].
func (l *JobLogger) Logf(ctx context.Context, level harmonia.LogLevel, format string, args ...any) error {
	return l.Log(ctx, level, fmt.Sprintf(format, args...))
}

// runningJob is a job that a NewJobLogger logger writes for, one write at
// a time.
type runningJob struct {
	store *harmonia.Store
	mu    sync.Mutex
	job   *harmonia.Job
}

func (r *runningJob) write(f func(*harmonia.Store, *harmonia.Job) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f(r.store, r.job)
}

// Options configures a [Worker]. Only Handlers is required.
type Options struct {
	// ID names the worker in the jobs it claims (worker_id). Defaults to
	// the host name, the process id and a random suffix.
	ID string
	// Handlers maps each job type the worker can run to its handler.
	// Required.
	Handlers map[harmonia.JobType]Handler
	// Types are the job types the worker claims; each needs a handler.
	// Defaults to every type in Handlers.
	Types []harmonia.JobType
	// Concurrency is how many jobs the worker runs at once. Defaults to
	// ConcurrencyDefault.
	Concurrency int
	// LeaseDuration is how long a claim or a heartbeat holds a job: a job
	// whose worker stops heart-beating for that long may be claimed by
	// another worker. It is measured on the Store's [LeaseClock].
	// Defaults to LeaseDurationDefault.
	LeaseDuration time.Duration
	// HeartbeatInterval is how often the worker extends the lease of each
	// job it holds, counted from when the claim's write was sent
	// ([harmonia.Job.ClaimSent]) and then from when
	// it sent the last heartbeat that was written, whether the handler has
	// started, is running or has returned and awaits the write of its
	// outcome. It must be shorter than LeaseDuration. It is measured in
	// real time. Defaults to a third of LeaseDuration.
	HeartbeatInterval time.Duration
	// PollInterval is how long an idle worker waits before it looks for
	// jobs again. Jobs enqueued through the worker's own Store wake it at
	// once. Defaults to PollIntervalDefault.
	PollInterval time.Duration
	// ShutdownTimeout is how long Run, once its context is cancelled,
	// waits for the cancelled handlers to return and their outcomes to be
	// recorded. The jobs of handlers that take longer stay running until
	// their leases expire, and then run again elsewhere. Defaults to
	// ShutdownTimeoutDefault.
	ShutdownTimeout time.Duration
	// BatchWait is how long the worker waits, once a handler has
	// returned, for its other running handlers to return, so that it
	// records their outcomes with one write and claims the next jobs for
	// their slots with one claim. It never waits past a lease's
	// deadline. Defaults to BatchWaitDefault.
	BatchWait time.Duration
	// Logger receives the worker's notices (lost leases, failed writes).
	// Defaults to a logger that discards everything, as the Store's
	// Options.Logger does.
	Logger *slog.Logger
	// ClaimPool is the pool the worker claims through
	// ([harmonia.ClaimPool]). Workers of one process that share a Store
	// should share one, so that they never compete for a job. Defaults
	// to a pool of the worker's own.
	ClaimPool *harmonia.ClaimPool
}

// Stats counts what a worker did since it was made.
type Stats struct {
	// Claimed counts claimed jobs (attempts started).
	Claimed int64
	// Succeeded counts attempts recorded as successes.
	Succeeded int64
	// Failed counts attempts recorded as failures, retried or not.
	Failed int64
	// Released counts jobs given back to the queue at shutdown.
	Released int64
	// LeaseLost counts attempts whose lease was lost, so that their
	// outcome was refused.
	LeaseLost int64
	// Cancelled counts attempts whose job [harmonia.Queue.CancelJob] cancelled
	// while they ran, so that their outcome was dropped.
	Cancelled int64
	// Panics counts handler panics (also counted as failures).
	Panics int64
}

// Worker claims jobs from a Store's queue and runs their handlers, up to
// its concurrency at once. While a handler runs, the worker extends the
// job's lease; when the handler returns, it records the success or the
// failure. Many workers, in one process or many, may share a queue: a job
// runs on one of them at a time.
type Worker struct {
	store   *harmonia.Store
	pool    *harmonia.ClaimPool
	cfg     Options
	log     *slog.Logger
	running atomic.Bool
	stats   struct {
		claimed, succeeded, failed, released, leaseLost, cancelled, panics atomic.Int64
	}
}

// New returns a worker for the jobs of store, with opts' defaults
// filled in. opts is required: it names the handlers.
//
// Errors: [harmonia.CodeInvalid] naming the field of opts to fix.
func New(store *harmonia.Store, opts *Options) (*Worker, error) {
	if store == nil {
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "store", "a *Store is required (from harmonia.Open)")
	}
	var cfg Options
	if opts != nil {
		cfg = *opts
	}
	if len(cfg.Handlers) == 0 {
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "handlers", "register at least one handler, for example Handlers: map[harmonia.JobType]harmonia.Handler{harmonia.JobValidate: h}")
	}
	for t, h := range cfg.Handlers {
		if !t.Valid() {
			return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "handlers", "job type %q must be lowercase letters, digits, _ . - and start with a letter", t)
		}
		if h == nil {
			return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "handlers", "the handler of job type %q is nil", t)
		}
	}
	cfg.Handlers = maps.Clone(cfg.Handlers)
	if len(cfg.Types) == 0 {
		cfg.Types = slices.Sorted(maps.Keys(cfg.Handlers))
	} else {
		cfg.Types = slices.Clone(cfg.Types)
	}
	for _, t := range cfg.Types {
		if cfg.Handlers[t] == nil {
			return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "types", "job type %q has no handler: add one to Handlers or leave it out of Types", t)
		}
	}
	switch {
	case cfg.Concurrency < 0 || cfg.Concurrency > 10000:
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "concurrency", "must be between 1 and 10000 (0 takes the default, %d)", ConcurrencyDefault)
	case cfg.LeaseDuration < 0 || (cfg.LeaseDuration > 0 && cfg.LeaseDuration < 10*time.Millisecond):
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "lease_duration", "must be at least 10ms (0 takes the default, %s)", LeaseDurationDefault)
	case cfg.HeartbeatInterval < 0, cfg.PollInterval < 0, cfg.ShutdownTimeout < 0, cfg.BatchWait < 0:
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "heartbeat_interval", "HeartbeatInterval, PollInterval, ShutdownTimeout and BatchWait must not be negative (0 takes the default)")
	case strings.ContainsFunc(cfg.ID, unicode.IsControl) || !utf8.ValidString(cfg.ID) || len(cfg.ID) > 200:
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "id", "must be at most 200 characters without control characters")
	}
	cfg.Concurrency = cmp.Or(cfg.Concurrency, ConcurrencyDefault)
	cfg.LeaseDuration = cmp.Or(cfg.LeaseDuration, LeaseDurationDefault)
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, cfg.LeaseDuration/3)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, PollIntervalDefault)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, ShutdownTimeoutDefault)
	cfg.BatchWait = cmp.Or(cfg.BatchWait, BatchWaitDefault)
	if cfg.HeartbeatInterval >= cfg.LeaseDuration {
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "heartbeat_interval", "must be shorter than LeaseDuration (%s), or the lease expires between heartbeats; a third of it is usual", cfg.LeaseDuration)
	}
	if cfg.ID == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "worker"
		}
		cfg.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), rand.Text()[:8])
	}
	if cfg.ClaimPool == nil {
		cfg.ClaimPool = harmonia.NewClaimPool(store)
	}
	w := &Worker{store: store, cfg: cfg, log: cmp.Or(cfg.Logger, discard), pool: cfg.ClaimPool}
	return w, nil
}

// ID returns the worker's id, the worker_id of the jobs it claims.
func (w *Worker) ID() string { return w.cfg.ID }

// Options returns the worker's options with their defaults filled in.
func (w *Worker) Options() Options {
	c := w.cfg
	c.Handlers, c.Types = maps.Clone(c.Handlers), slices.Clone(c.Types)
	return c
}

// Stats returns what the worker did so far.
func (w *Worker) Stats() Stats {
	return Stats{
		Claimed: w.stats.claimed.Load(), Succeeded: w.stats.succeeded.Load(), Failed: w.stats.failed.Load(),
		Released: w.stats.released.Load(), LeaseLost: w.stats.leaseLost.Load(), Cancelled: w.stats.cancelled.Load(),
		Panics: w.stats.panics.Load(),
	}
}

// Run claims and runs jobs until ctx is cancelled. It claims jobs for
// all its free slots at once ([harmonia.Queue.ClaimJobs], through candidates that
// the workers of one Store share out), whenever it has free slots: once a
// handler returns (after waiting up to BatchWait for the others), and
// otherwise every PollInterval or when its Store enqueues a job.
//
// One goroutine of the worker, its keeper, does every write for the jobs
// it holds, batched: the heartbeats that come due (every
// HeartbeatInterval from the claim's sending), the outcomes of the
// handlers that returned (after up to BatchWait for the others, never
// past a lease's deadline), and the log lines buffered since, in one
// update command and one insert. A heartbeat that finds the lease lost or
// the job cancelled cancels the handler's context, with the cause
// [harmonia.ErrLeaseLost] or [harmonia.ErrJobCancelled], and the handler's outcome is
// dropped. A job whose lease the worker could not extend in time is
// given up the same way: its lease may have expired.
//
// When ctx is cancelled, Run stops claiming and cancels the running
// handlers' contexts. A handler that then returns a result has its
// success recorded; one that returns an error has its job released:
// pending again, the attempt not counted, for another worker to claim.
// Run waits up to ShutdownTimeout for the handlers; the jobs of those
// still running then are left to lease expiry (another worker runs them
// once their leases expire). No job is lost either way. Run returns nil
// after a shutdown.
//
// Errors: [harmonia.CodeConflict] when the worker is running already.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return harmonia.Errorf(harmonia.CodeConflict, EntityWorker, "ID", "worker %s is running already", w.cfg.ID)
	}
	defer w.running.Store(false)

	detached := context.WithoutCancel(ctx)
	handlersCtx, stopHandlers := context.WithCancelCause(detached)
	k := newKeeper(w)
	keeperDone := make(chan struct{})
	go func() {
		defer close(keeperDone)
		k.run(detached)
	}()
	var wg sync.WaitGroup
	slots := make(chan struct{}, w.cfg.Concurrency)
	freed := make(chan struct{}, 1)
	for ctx.Err() == nil {
		free := cap(slots) - len(slots)
		if free == 0 {
			select {
			case <-freed:
			case <-ctx.Done():
			}
			continue
		}
		if free < cap(slots) {
			free = w.gatherSlots(ctx, slots, freed)
		}
		wake := w.store.Queue().JobsEnqueued()
		sent := time.Now()
		jobs := w.claim(ctx, free)
		if len(jobs) == 0 {
			w.idle(ctx, wake)
			continue
		}
		for _, job := range jobs {
			slots <- struct{}{}
			h := &heldJob{job: job, view: *job, leaseStart: claimSent(job, sent)}
			hctx, cancel := context.WithCancelCause(handlersCtx)
			h.cancel = cancel
			k.add(h)
			wg.Go(func() {
				defer func() {
					<-slots
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
				w.execute(hctx, k, h)
			})
		}
	}

	stopHandlers(errShutdown)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(w.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		w.log.Warn("harmonia: worker stopped before its handlers returned; their jobs run again when their leases expire",
			"worker", w.cfg.ID, "shutdown_timeout", w.cfg.ShutdownTimeout)
	}
	k.stop()
	<-keeperDone
	return nil
}

// gatherSlots waits up to BatchWait for the busy slots to free, so that
// one claim fills them together, and returns how many are free.
func (w *Worker) gatherSlots(ctx context.Context, slots chan struct{}, freed <-chan struct{}) int {
	t := time.NewTimer(w.cfg.BatchWait)
	defer t.Stop()
	for len(slots) > 0 {
		select {
		case <-freed:
		case <-t.C:
			return cap(slots) - len(slots)
		case <-ctx.Done():
			return cap(slots) - len(slots)
		}
	}
	return cap(slots)
}

// claim claims up to n jobs. The claim itself is not cut short by ctx (a
// claim the server made but whose reply was lost would hold jobs until
// their leases expired); jobs claimed as ctx ends are released.
func (w *Worker) claim(ctx context.Context, n int) []*harmonia.Job {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), workerWriteTimeout)
	defer cancel()
	jobs, err := w.pool.ClaimJobs(wctx, w.cfg.ID, w.cfg.Types, n, w.cfg.LeaseDuration)
	if err != nil {
		w.log.Warn("harmonia: claim failed", "worker", w.cfg.ID, "err", err)
		return nil
	}
	w.stats.claimed.Add(int64(len(jobs)))
	if ctx.Err() != nil {
		for _, job := range jobs {
			w.record(job, w.store.Queue().ReleaseJob(wctx, job), &w.stats.released)
		}
		return nil
	}
	return jobs
}

// idle waits for the poll interval, an enqueue on the Store, or ctx.
func (w *Worker) idle(ctx context.Context, wake <-chan struct{}) {
	t := time.NewTimer(w.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-wake:
	case <-t.C:
	}
}

// execute runs h's handler and hands its outcome to the keeper.
func (w *Worker) execute(ctx context.Context, k *keeper, h *heldJob) {
	defer h.cancel(nil)
	view := h.view
	result, err := w.call(ctx, w.cfg.Handlers[view.Type], &view, &JobLogger{held: h, keep: k})
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, harmonia.ErrLeaseLost), errors.Is(cause, harmonia.ErrJobCancelled):
		k.drop(h, cause)
	case err == nil:
		raw, rerr := harmonia.EncodeResult(result)
		if rerr != nil {
			k.finish(h, &harmonia.LeaseWrite{Op: harmonia.LeaseFail, Err: harmonia.Permanent(rerr)}, &w.stats.failed)
			return
		}
		k.finish(h, &harmonia.LeaseWrite{Op: harmonia.LeaseComplete, Result: raw}, &w.stats.succeeded)
	case errors.Is(cause, errShutdown):
		k.finish(h, &harmonia.LeaseWrite{Op: harmonia.LeaseRelease}, &w.stats.released)
	default:
		k.finish(h, &harmonia.LeaseWrite{Op: harmonia.LeaseFail, Err: err}, &w.stats.failed)
	}
}

// record counts a finished write in counter, or logs why it failed.
func (w *Worker) record(job *harmonia.Job, err error, counter *atomic.Int64) {
	switch {
	case err == nil:
		counter.Add(1)
	case errors.Is(err, harmonia.ErrJobCancelled):
		w.stats.cancelled.Add(1)
		w.log.Info("harmonia: a job was cancelled while it ran; its outcome is dropped", "worker", w.cfg.ID, "job", job.ID.Hex(), "attempt", job.Attempt)
	case errors.Is(err, harmonia.ErrLeaseLost):
		w.stats.leaseLost.Add(1)
		w.log.Warn("harmonia: lost the lease of a job before recording its outcome", "worker", w.cfg.ID, "job", job.ID.Hex(), "attempt", job.Attempt)
	default:
		w.log.Error("harmonia: cannot record a job's outcome; it runs again when its lease expires",
			"worker", w.cfg.ID, "job", job.ID.Hex(), "attempt", job.Attempt, "err", err)
	}
}

// call runs h, turning a panic into an error with the panic's text; the
// stack goes to the job's log.
func (w *Worker) call(ctx context.Context, h Handler, job *harmonia.Job, log *JobLogger) (result any, err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		w.stats.panics.Add(1)
		err = fmt.Errorf("panic: %v", r)
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), workerWriteTimeout)
		defer cancel()
		_ = log.Logf(lctx, harmonia.LevelError, "panic: %v\n%s", r, debug.Stack())
	}()
	return h(ctx, job, log)
}

// claimSent is when the write that claimed job was sent, which the lease
// is counted from: job.ClaimSent where the claim recorded it, else
// before, when the worker asked for the claim.
func claimSent(job *harmonia.Job, asked time.Time) time.Time {
	if job.ClaimSent.IsZero() {
		return asked
	}
	return job.ClaimSent
}
