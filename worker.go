package harmonia

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of [WorkerOptions].
const (
	// WorkerConcurrencyDefault is how many jobs a worker runs at once.
	WorkerConcurrencyDefault = 4
	// LeaseDurationDefault is how long a claim holds a job without a
	// heartbeat.
	LeaseDurationDefault = 30 * time.Second
	// PollIntervalDefault is how long an idle worker waits before it looks
	// for jobs again.
	PollIntervalDefault = time.Second
	// ShutdownTimeoutDefault is how long a stopping worker waits for its
	// cancelled handlers to return.
	ShutdownTimeoutDefault = 30 * time.Second
)

// EntityWorker names a worker in errors about its configuration.
const EntityWorker = "worker"

// workerWriteTimeout bounds a worker's own writes (claims, finishes,
// releases), which do not stop when its context is cancelled.
const workerWriteTimeout = 30 * time.Second

// errShutdown is the cause of a handler's context cancellation when its
// worker stops.
var errShutdown = errors.New("harmonia: worker shutting down")

// Handler runs one attempt of a job. It returns the job's result (a
// document, as for Enqueue's params, or nil) or an error; a [Permanent]
// error fails the job without further attempts.
//
// ctx is cancelled when the worker stops or loses the job's lease
// ([context.Cause] tells which: [ErrLeaseLost] for a lost lease); the
// handler should then return promptly. job is the handler's own copy.
// log appends lines to the job's log.
type Handler func(ctx context.Context, job *Job, log *JobLogger) (result any, err error)

// JobLogger appends lines to the log of the job a handler runs (see
// [Store.AppendLog]). It is safe for concurrent use.
type JobLogger struct {
	run *runningJob
}

// NewJobLogger returns a logger for job, a job claimed with
// [Store.ClaimJob], for loops that run handlers themselves. The logger
// writes through job, which it then owns: it must not be used
// concurrently with other writes for the job.
func NewJobLogger(s *Store, job *Job) *JobLogger {
	return &JobLogger{run: &runningJob{store: s, job: job}}
}

// Log appends message at level to the job's log. When the lease is lost,
// it also cancels the handler's context.
//
// Errors: as [Store.AppendLog].
func (l *JobLogger) Log(ctx context.Context, level LogLevel, message string) error {
	return l.run.write(func(s *Store, j *Job) error { return s.AppendLog(ctx, j, level, message) })
}

// Logf appends a formatted line at level to the job's log.
//
// Errors: as [Store.AppendLog].
func (l *JobLogger) Logf(ctx context.Context, level LogLevel, format string, args ...any) error {
	return l.Log(ctx, level, fmt.Sprintf(format, args...))
}

// runningJob is a worker's copy of a job it holds: every write for the job
// goes through it, one at a time.
type runningJob struct {
	store  *Store
	mu     sync.Mutex
	job    *Job
	cancel context.CancelCauseFunc // of the handler's context; nil outside a worker
}

// write runs one write for the job and cancels the handler when it finds
// the lease lost.
func (r *runningJob) write(f func(*Store, *Job) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := f(r.store, r.job)
	if errors.Is(err, ErrLeaseLost) && r.cancel != nil {
		r.cancel(err)
	}
	return err
}

// WorkerOptions configures a [Worker]. Only Handlers is required.
type WorkerOptions struct {
	// ID names the worker in the jobs it claims (worker_id). Defaults to
	// the host name, the process id and a random suffix.
	ID string
	// Handlers maps each job type the worker can run to its handler.
	// Required.
	Handlers map[JobType]Handler
	// Types are the job types the worker claims; each needs a handler.
	// Defaults to every type in Handlers.
	Types []JobType
	// Concurrency is how many jobs the worker runs at once. Defaults to
	// WorkerConcurrencyDefault.
	Concurrency int
	// LeaseDuration is how long a claim or a heartbeat holds a job: a job
	// whose worker stops heart-beating for that long may be claimed by
	// another worker. It is measured on the Store's clock (Options.Now).
	// Defaults to LeaseDurationDefault.
	LeaseDuration time.Duration
	// HeartbeatInterval is how often the worker extends the lease of each
	// job it runs; it must be shorter than LeaseDuration. It is measured
	// in real time. Defaults to a third of LeaseDuration.
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
	// Logger receives the worker's notices (lost leases, failed writes).
	// Defaults to the Store's logger.
	Logger *slog.Logger
}

// WorkerStats counts what a worker did since it was made.
type WorkerStats struct {
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
	// Panics counts handler panics (also counted as failures).
	Panics int64
}

// Worker claims jobs from a Store's queue and runs their handlers, up to
// its concurrency at once. While a handler runs, the worker extends the
// job's lease; when the handler returns, it records the success or the
// failure. Many workers, in one process or many, may share a queue: a job
// runs on one of them at a time.
type Worker struct {
	store   *Store
	cfg     WorkerOptions
	log     *slog.Logger
	running atomic.Bool
	stats   struct {
		claimed, succeeded, failed, released, leaseLost, panics atomic.Int64
	}
}

// NewWorker returns a worker for the jobs of store, with opts' defaults
// filled in. opts is required: it names the handlers.
//
// Errors: [CodeInvalid] naming the field of opts to fix.
func NewWorker(store *Store, opts *WorkerOptions) (*Worker, error) {
	if store == nil {
		return nil, invalidf(EntityWorker, "store", "a *Store is required (from harmonia.Open)")
	}
	var cfg WorkerOptions
	if opts != nil {
		cfg = *opts
	}
	if len(cfg.Handlers) == 0 {
		return nil, invalidf(EntityWorker, "handlers", "register at least one handler, for example Handlers: map[harmonia.JobType]harmonia.Handler{harmonia.JobValidate: h}")
	}
	for t, h := range cfg.Handlers {
		if !validJobType(string(t)) {
			return nil, invalidf(EntityWorker, "handlers", "job type %q must be lowercase letters, digits, _ . - and start with a letter", t)
		}
		if h == nil {
			return nil, invalidf(EntityWorker, "handlers", "the handler of job type %q is nil", t)
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
			return nil, invalidf(EntityWorker, "types", "job type %q has no handler: add one to Handlers or leave it out of Types", t)
		}
	}
	switch {
	case cfg.Concurrency < 0 || cfg.Concurrency > 10000:
		return nil, invalidf(EntityWorker, "concurrency", "must be between 1 and 10000 (0 takes the default, %d)", WorkerConcurrencyDefault)
	case cfg.LeaseDuration < 0 || (cfg.LeaseDuration > 0 && cfg.LeaseDuration < 10*time.Millisecond):
		return nil, invalidf(EntityWorker, "lease_duration", "must be at least 10ms (0 takes the default, %s)", LeaseDurationDefault)
	case cfg.HeartbeatInterval < 0, cfg.PollInterval < 0, cfg.ShutdownTimeout < 0:
		return nil, invalidf(EntityWorker, "heartbeat_interval", "HeartbeatInterval, PollInterval and ShutdownTimeout must not be negative (0 takes the default)")
	case controlProblem(cfg.ID) != "" || len(cfg.ID) > 200:
		return nil, invalidf(EntityWorker, "id", "must be at most 200 characters without control characters")
	}
	cfg.Concurrency = cmp.Or(cfg.Concurrency, WorkerConcurrencyDefault)
	cfg.LeaseDuration = cmp.Or(cfg.LeaseDuration, LeaseDurationDefault)
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, cfg.LeaseDuration/3)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, PollIntervalDefault)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, ShutdownTimeoutDefault)
	if cfg.HeartbeatInterval >= cfg.LeaseDuration {
		return nil, invalidf(EntityWorker, "heartbeat_interval", "must be shorter than LeaseDuration (%s), or the lease expires between heartbeats; a third of it is usual", cfg.LeaseDuration)
	}
	if cfg.ID == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "worker"
		}
		cfg.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), rand.Text()[:8])
	}
	w := &Worker{store: store, cfg: cfg, log: cmp.Or(cfg.Logger, store.log)}
	return w, nil
}

// ID returns the worker's id, the worker_id of the jobs it claims.
func (w *Worker) ID() string { return w.cfg.ID }

// Options returns the worker's options with their defaults filled in.
func (w *Worker) Options() WorkerOptions {
	c := w.cfg
	c.Handlers, c.Types = maps.Clone(c.Handlers), slices.Clone(c.Types)
	return c
}

// Stats returns what the worker did so far.
func (w *Worker) Stats() WorkerStats {
	return WorkerStats{
		Claimed: w.stats.claimed.Load(), Succeeded: w.stats.succeeded.Load(), Failed: w.stats.failed.Load(),
		Released: w.stats.released.Load(), LeaseLost: w.stats.leaseLost.Load(), Panics: w.stats.panics.Load(),
	}
}

// Run claims and runs jobs until ctx is cancelled. It claims whenever it
// has a free slot: right after a job finishes, and otherwise every
// PollInterval or when its Store enqueues a job.
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
// Errors: [CodeConflict] when the worker is running already.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return conflictf(EntityWorker, "ID", "worker %s is running already", w.cfg.ID)
	}
	defer w.running.Store(false)

	detached := context.WithoutCancel(ctx)
	handlersCtx, stopHandlers := context.WithCancelCause(detached)
	heartbeatsCtx, stopHeartbeats := context.WithCancel(detached)
	defer stopHeartbeats()
	var wg sync.WaitGroup
	slots := make(chan struct{}, w.cfg.Concurrency)
	// A slot's goroutine claims its next job itself as soon as one ends,
	// with no hand-off to this loop, which only fills free slots. When such
	// a claim finds nothing, the slot is freed and this loop idles first
	// (on the wake channel taken before that claim), so that an idle
	// worker makes one claim per PollInterval, not one per slot.
	emptied := make(chan (<-chan struct{}), 1)
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		select {
		case wake := <-emptied:
			<-slots
			w.idle(ctx, wake)
			continue
		default:
		}
		wake := w.store.enqueued.wait()
		job := w.claim(ctx)
		if job == nil {
			<-slots
			w.idle(ctx, wake)
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			for job != nil {
				w.execute(handlersCtx, heartbeatsCtx, job)
				if ctx.Err() != nil {
					return
				}
				wake := w.store.enqueued.wait()
				if job = w.claim(ctx); job == nil {
					select {
					case emptied <- wake:
					default:
					}
				}
			}
		})
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
	return nil
}

// claim claims one job, or returns nil. The claim itself is not cut short
// by ctx (a claim the server made but whose reply was lost would hold a
// job until its lease expired); a job claimed as ctx ends is released.
func (w *Worker) claim(ctx context.Context) *Job {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), workerWriteTimeout)
	defer cancel()
	job, err := w.store.ClaimJob(wctx, w.cfg.ID, w.cfg.Types, w.cfg.LeaseDuration)
	if err != nil {
		w.log.Warn("harmonia: claim failed", "worker", w.cfg.ID, "err", err)
		return nil
	}
	if job == nil {
		return nil
	}
	w.stats.claimed.Add(1)
	if ctx.Err() != nil {
		w.record(job, w.store.ReleaseJob(wctx, job), &w.stats.released)
		return nil
	}
	return job
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

// execute runs job's handler while heart-beating, then records the
// outcome.
func (w *Worker) execute(handlersCtx, heartbeatsCtx context.Context, job *Job) {
	ctx, cancel := context.WithCancelCause(handlersCtx)
	defer cancel(nil)
	run := &runningJob{store: w.store, job: job, cancel: cancel}
	view := *job

	stop := make(chan struct{})
	var beats sync.WaitGroup
	beats.Go(func() { w.heartbeat(heartbeatsCtx, run, stop) })
	// Deferred too: a handler calling runtime.Goexit must not leave the
	// lease extended forever.
	stopBeats := sync.OnceFunc(func() {
		close(stop)
		beats.Wait()
	})
	defer stopBeats()
	result, err := w.call(ctx, w.cfg.Handlers[job.Type], &view, &JobLogger{run: run})
	cause := context.Cause(ctx)
	stopBeats()

	if errors.Is(cause, ErrLeaseLost) {
		w.stats.leaseLost.Add(1)
		w.log.Warn("harmonia: lost the lease of a running job; its outcome is dropped",
			"worker", w.cfg.ID, "job", job.ID.Hex(), "attempt", job.Attempt)
		return
	}
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(handlersCtx), workerWriteTimeout)
	defer wcancel()
	switch {
	case err == nil:
		werr := run.write(func(s *Store, j *Job) error { return s.CompleteJob(wctx, j, result) })
		if ErrorCode(werr) == CodeInvalid {
			w.record(job, run.write(func(s *Store, j *Job) error { return s.FailJob(wctx, j, Permanent(werr)) }), &w.stats.failed)
			return
		}
		w.record(job, werr, &w.stats.succeeded)
	case errors.Is(cause, errShutdown):
		w.record(job, run.write(func(s *Store, j *Job) error { return s.ReleaseJob(wctx, j) }), &w.stats.released)
	default:
		w.record(job, run.write(func(s *Store, j *Job) error { return s.FailJob(wctx, j, err) }), &w.stats.failed)
	}
}

// record counts a finished write in counter, or logs why it failed.
func (w *Worker) record(job *Job, err error, counter *atomic.Int64) {
	switch {
	case err == nil:
		counter.Add(1)
	case errors.Is(err, ErrLeaseLost):
		w.stats.leaseLost.Add(1)
		w.log.Warn("harmonia: lost the lease of a job before recording its outcome", "worker", w.cfg.ID, "job", job.ID.Hex(), "attempt", job.Attempt)
	default:
		w.log.Error("harmonia: cannot record a job's outcome; it runs again when its lease expires",
			"worker", w.cfg.ID, "job", job.ID.Hex(), "attempt", job.Attempt, "err", err)
	}
}

// heartbeat extends run's lease every HeartbeatInterval until stop is
// closed or ctx ends; a lost lease cancels the handler.
func (w *Worker) heartbeat(ctx context.Context, run *runningJob, stop <-chan struct{}) {
	t := time.NewTicker(w.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := run.write(func(s *Store, j *Job) error { return s.Heartbeat(ctx, j, w.cfg.LeaseDuration) })
		if errors.Is(err, ErrLeaseLost) {
			return
		}
		if err != nil && ctx.Err() == nil {
			w.log.Warn("harmonia: heartbeat failed", "worker", w.cfg.ID, "job", run.job.ID.Hex(), "err", err)
		}
	}
}

// call runs h, turning a panic into an error with the panic's text; the
// stack goes to the job's log.
func (w *Worker) call(ctx context.Context, h Handler, job *Job, log *JobLogger) (result any, err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		w.stats.panics.Add(1)
		err = fmt.Errorf("panic: %v", r)
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), workerWriteTimeout)
		defer cancel()
		_ = log.Logf(lctx, LevelError, "panic: %v\n%s", r, debug.Stack())
	}()
	return h(ctx, job, log)
}

// wakeup lets goroutines wait for the next wake call.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel that is closed by the next wake.
func (w *wakeup) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// wake wakes every goroutine waiting.
func (w *wakeup) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}
