package worker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/testenv"
	"github.com/harmonia-ml/harmonia/worker"
)

// EnvTestJobs sets the size of the many-workers test: by default 500 on
// the embedded lane, whose server reads the whole jobs collection on every
// claim, and 2,000 on a MongoDB lane.
const EnvTestJobs = "HARMONIA_TEST_JOBS"

// TestWorkerRunsManyJobsOnce runs HARMONIA_TEST_JOBS jobs on 8 workers of
// concurrency 4: every job succeeds exactly once, and no job ever runs in
// two handlers at the same time.
func TestWorkerRunsManyJobsOnce(t *testing.T) {
	t.Parallel()
	n := 2000
	if harmoniatest.CurrentLane(t).Embedded {
		n = 500
	}
	n = harmoniatest.EnvInt(t, EnvTestJobs, n)
	b := setup(t)
	ids := testenv.EnqueueNumbered(t, b.store, noop, n)

	var active, runs sync.Map // job id → *atomic.Int32
	var overlaps atomic.Int32
	h := func(ctx context.Context, job *harmonia.Job, _ *worker.JobLogger) (any, error) {
		a, _ := active.LoadOrStore(job.ID, new(atomic.Int32))
		r, _ := runs.LoadOrStore(job.ID, new(atomic.Int32))
		if a.(*atomic.Int32).Add(1) > 1 {
			overlaps.Add(1)
		}
		defer a.(*atomic.Int32).Add(-1)
		r.(*atomic.Int32).Add(1)
		return nil, nil
	}
	start := time.Now()
	var workers []*worker.Worker
	var stops []func()
	for i := range 8 {
		w, stop := startWorker(t, b, worker.Options{ID: fmt.Sprintf("w%d", i), Handlers: handlers(h), PollInterval: 50 * time.Millisecond})
		workers, stops = append(workers, w), append(stops, stop)
	}
	// Measured on 2 cores: 500 jobs take about 60 s, 85 s under -race (each
	// claim reads the whole collection); allow 0.6 s a job.
	testenv.WaitWithin(t, max(90*time.Second, time.Duration(n)*600*time.Millisecond), "every job to succeed",
		func() bool { return sumStats(workers).Succeeded >= int64(n) })
	elapsed := time.Since(start)
	for _, stop := range stops {
		stop()
	}

	stats := sumStats(workers)
	require.Zero(t, overlaps.Load(), "jobs run by two handlers at once")
	require.EqualValues(t, n, stats.Succeeded)
	require.EqualValues(t, n, stats.Claimed)
	require.Zero(t, stats.LeaseLost+stats.Failed+stats.Released)
	require.EqualValues(t, n, countJobs(t, b, bson.D{{Key: "status", Value: harmonia.JobSuccess}, {Key: "attempt", Value: 1}}))
	for i, id := range ids {
		r, ok := runs.Load(id)
		require.True(t, ok, "job %d never ran", i)
		require.EqualValues(t, 1, r.(*atomic.Int32).Load(), "job %d", i)
	}
	t.Logf("%d jobs, 8 workers × 4: %s (%.0f jobs/s), overlaps %d", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), overlaps.Load())
}

// TestWorkerReclaimsCrashedJobs: the first attempt of every fifth job
// hangs without heart-beating, as a dead worker would. Once the other jobs
// are done, the clock passes the lease: the hung jobs are claimed again
// and succeed, and when the hung handlers finally return their results are
// refused.
func TestWorkerReclaimsCrashedJobs(t *testing.T) {
	t.Parallel()
	const n, every = 100, 5
	b := setup(t)
	ids := testenv.EnqueueNumbered(t, b.store, noop, n)

	reclaimed := make(map[int]func(), n/every)
	reclaimedCh := make(map[int]chan struct{}, n/every)
	for i := 0; i < n; i += every {
		ch := make(chan struct{})
		reclaimedCh[i], reclaimed[i] = ch, sync.OnceFunc(func() { close(ch) })
	}
	var hung atomic.Int32
	h := func(ctx context.Context, job *harmonia.Job, _ *worker.JobLogger) (any, error) {
		i := testenv.JobNumber(job)
		if i%every == 0 {
			if job.Attempt == 1 {
				hung.Add(1)
				select {
				case <-reclaimedCh[i]:
				case <-ctx.Done():
				}
			} else {
				reclaimed[i]()
			}
		}
		return bson.D{{Key: "attempt", Value: job.Attempt}}, nil
	}
	// Heartbeats run on real time and the lease on the Store's clock: with
	// an hour's interval no heartbeat happens during the test, so a hung
	// handler is a worker that stopped heart-beating.
	cfg := worker.Options{Handlers: handlers(h), PollInterval: 50 * time.Millisecond,
		LeaseDuration: time.Hour, HeartbeatInterval: 59 * time.Minute}
	var workers []*worker.Worker
	var stops []func()
	for i := range 8 {
		cfg.ID = fmt.Sprintf("w%d", i)
		w, stop := startWorker(t, b, cfg)
		workers, stops = append(workers, w), append(stops, stop)
	}
	waitFor(t, "the healthy jobs to succeed and the others to hang", func() bool {
		return sumStats(workers).Succeeded == n-n/every && hung.Load() == n/every
	})
	require.EqualValues(t, n/every, countJobs(t, b, statusIs(harmonia.JobRunning)))

	b.clock.Advance(time.Hour + time.Second)
	waitFor(t, "the hung jobs to be reclaimed and their stale finishes refused", func() bool {
		s := sumStats(workers)
		return s.Succeeded == n && s.LeaseLost == n/every
	})
	for _, stop := range stops {
		stop()
	}
	stats := sumStats(workers)
	require.EqualValues(t, n+n/every, stats.Claimed)
	require.Zero(t, stats.Failed)
	jobs := testenv.AllJobs(t, b.db)
	for i, id := range ids {
		j := jobs[id]
		require.Equal(t, harmonia.JobSuccess, j.Status, "job %d", i)
		if i%every != 0 {
			require.Equal(t, 1, j.Attempt)
			continue
		}
		require.Equal(t, 2, j.Attempt, "job %d", i)
		require.EqualValues(t, 2, j.Result.Lookup("attempt").Int32(), "job %d: the stale attempt's result was refused", i)
		require.Len(t, j.Errors, 1)
		require.Equal(t, 1, j.Errors[0].Attempt)
		require.Contains(t, j.Errors[0].Error, "lease expired")
	}
	t.Logf("%d jobs, %d crashed first attempts: %d claims, %d stale finishes refused", n, n/every, stats.Claimed, stats.LeaseLost)
}

// TestWorkerRetries: a handler failing twice then succeeding ends success
// at attempt 3; one always failing ends failed at max attempts with every
// error kept. The test moves the clock past each backoff.
func TestWorkerRetries(t *testing.T) {
	t.Parallel()
	b := setupOn(t, harmoniatest.Database(t), func(o *harmonia.Options) { o.JobBackoffBase, o.JobBackoffMax = time.Minute, time.Minute })
	flaky := b.enqueue(t, noop, bson.D{{Key: "n", Value: 0}}, nil)
	broken := b.enqueue(t, noop, bson.D{{Key: "n", Value: 1}}, nil)
	h := func(ctx context.Context, job *harmonia.Job, _ *worker.JobLogger) (any, error) {
		if testenv.JobNumber(job) == 1 || job.Attempt < 3 {
			return nil, fmt.Errorf("attempt %d failed", job.Attempt)
		}
		return nil, nil
	}
	startWorker(t, b, worker.Options{Handlers: handlers(h), PollInterval: 5 * time.Millisecond})
	for attempt := 1; attempt < harmonia.MaxAttemptsDefault; attempt++ {
		waitFor(t, fmt.Sprintf("attempt %d to fail", attempt), func() bool {
			return countJobs(t, b, bson.D{{Key: "status", Value: harmonia.JobPending}, {Key: "attempt", Value: attempt}}) == 2
		})
		b.clock.Advance(time.Minute)
	}
	waitFor(t, "both jobs to finish", func() bool {
		return countJobs(t, b, bson.D{{Key: "finished_at", Value: bson.D{{Key: "$exists", Value: true}}}}) == 2
	})
	f := b.job(t, flaky.ID)
	require.Equal(t, harmonia.JobSuccess, f.Status)
	require.Equal(t, 3, f.Attempt)
	require.Len(t, f.Errors, 2)
	require.Empty(t, f.Error)
	g := b.job(t, broken.ID)
	require.Equal(t, harmonia.JobFailed, g.Status)
	require.Equal(t, 3, g.Attempt)
	require.Len(t, g.Errors, 3)
	for i, e := range g.Errors {
		require.Equal(t, fmt.Sprintf("attempt %d failed", i+1), e.Error)
	}
}

func TestWorkerRecoversPanics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad := b.enqueue(t, noop, bson.D{{Key: "n", Value: 0}}, &harmonia.EnqueueOpts{MaxAttempts: 1})
	good := b.enqueue(t, noop, bson.D{{Key: "n", Value: 1}}, nil)
	h := func(ctx context.Context, job *harmonia.Job, _ *worker.JobLogger) (any, error) {
		if testenv.JobNumber(job) == 0 {
			panic("boom")
		}
		return nil, nil
	}
	w, _ := startWorker(t, b, worker.Options{Handlers: handlers(h), Concurrency: 1, PollInterval: 5 * time.Millisecond})
	waitFor(t, "both jobs to finish", func() bool { s := w.Stats(); return s.Succeeded+s.Failed == 2 })
	require.EqualValues(t, 1, w.Stats().Panics)
	got := b.job(t, bad.ID)
	require.Equal(t, harmonia.JobFailed, got.Status)
	require.Equal(t, "panic: boom", got.Error)
	log, err := b.store.Queue().JobLog(b.ctx, bad.ID)
	require.NoError(t, err)
	require.Len(t, log, 1)
	require.Equal(t, harmonia.LevelError, log[0].Level)
	require.Contains(t, log[0].Message, "worker_test.go", "the stack is in the job's log")
	require.Equal(t, harmonia.JobSuccess, b.job(t, good.ID).Status, "the worker survived the panic")
}

// TestWorkerHeartbeatKeepsLease: while a handler runs past its first
// lease, heartbeats keep the lease, and no other worker can claim the job.
func TestWorkerHeartbeatKeepsLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	j := b.enqueue(t, noop, nil, nil)
	release := make(chan struct{})
	h := func(ctx context.Context, job *harmonia.Job, log *worker.JobLogger) (any, error) {
		<-release
		return nil, log.Log(ctx, harmonia.LevelInfo, "done")
	}
	w, _ := startWorker(t, b, worker.Options{Handlers: handlers(h), HeartbeatInterval: 5 * time.Millisecond, PollInterval: 5 * time.Millisecond})
	waitFor(t, "the job to run", func() bool { return b.job(t, j.ID).Status == harmonia.JobRunning })
	first := *b.job(t, j.ID).LeaseExpiresAt
	for range 3 {
		b.clock.Advance(lease * 2 / 3)
		want := b.clock.Now().Add(lease)
		waitFor(t, "a heartbeat", func() bool { return b.job(t, j.ID).LeaseExpiresAt.Equal(want) })
	}
	require.True(t, b.clock.Now().After(first), "the clock is past the first lease")
	require.Nil(t, b.claim(t, "other"), "the lease holds")
	close(release)
	waitFor(t, "the job to succeed", func() bool { return w.Stats().Succeeded == 1 })
	got := b.job(t, j.ID)
	require.Equal(t, harmonia.JobSuccess, got.Status)
	require.Equal(t, 1, got.Attempt)
	require.Len(t, got.LogTail, 1)
}

// TestWorkerLostLeaseCancelsHandler: when another owner takes the job,
// the next heartbeat finds the lease lost and cancels the handler, whose
// outcome is then dropped.
func TestWorkerLostLeaseCancelsHandler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	j := b.enqueue(t, noop, nil, nil)
	causes := make(chan error, 1)
	h := func(ctx context.Context, job *harmonia.Job, _ *worker.JobLogger) (any, error) {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return bson.D{{Key: "stale", Value: true}}, nil
	}
	w, _ := startWorker(t, b, worker.Options{Handlers: handlers(h), HeartbeatInterval: 5 * time.Millisecond, PollInterval: 5 * time.Millisecond})
	waitFor(t, "the job to run", func() bool { return b.job(t, j.ID).Status == harmonia.JobRunning })
	_, err := b.db.Collection(harmonia.CollectionJobs).UpdateOne(b.ctx, bson.D{{Key: "_id", Value: j.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lease_token", Value: "new-owner"}}}})
	require.NoError(t, err)

	select {
	case cause := <-causes:
		require.ErrorIs(t, cause, harmonia.ErrLeaseLost)
	case <-time.After(90 * time.Second):
		t.Fatal("the handler was not cancelled")
	}
	waitFor(t, "the lost lease to be counted", func() bool { return w.Stats().LeaseLost == 1 })
	got := b.job(t, j.ID)
	require.Equal(t, harmonia.JobRunning, got.Status)
	require.Equal(t, "new-owner", got.LeaseToken)
	require.Empty(t, got.Result)
	require.Zero(t, w.Stats().Succeeded)
}

// TestWorkerShutdownReleasesJobs: cancelling Run cancels the handlers; a
// job whose handler then fails goes back to pending with its attempt
// uncounted, one whose handler returns a result succeeds, and one whose
// handler outlives ShutdownTimeout is left to its lease.
func TestWorkerShutdownReleasesJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := testenv.EnqueueNumbered(t, b.store, noop, 3)
	stuck := make(chan struct{})
	var started atomic.Int32
	h := func(ctx context.Context, job *harmonia.Job, _ *worker.JobLogger) (any, error) {
		started.Add(1)
		<-ctx.Done()
		switch testenv.JobNumber(job) {
		case 0:
			return nil, ctx.Err()
		case 1:
			return bson.D{{Key: "partial", Value: true}}, nil
		}
		<-stuck
		return nil, nil
	}
	// The timeout covers the release and the success writes, which wait
	// their turn on a server that the parallel tests keep busy.
	w, stop := startWorker(t, b, worker.Options{Handlers: handlers(h), PollInterval: 5 * time.Millisecond, ShutdownTimeout: 3 * time.Second})
	waitFor(t, "three handlers to start", func() bool { return started.Load() == 3 })
	stop()
	s := w.Stats()
	require.EqualValues(t, 1, s.Released)
	require.EqualValues(t, 1, s.Succeeded)

	released := b.job(t, ids[0])
	require.Equal(t, harmonia.JobPending, released.Status)
	require.Zero(t, released.Attempt)
	require.Empty(t, released.Errors)
	require.Equal(t, harmonia.JobSuccess, b.job(t, ids[1]).Status)
	left := b.job(t, ids[2])
	require.Equal(t, harmonia.JobRunning, left.Status)

	b.clock.Advance(lease + time.Second)
	ok := func(context.Context, *harmonia.Job, *worker.JobLogger) (any, error) { return nil, nil }
	w2, _ := startWorker(t, b, worker.Options{ID: "w2", Handlers: handlers(ok), PollInterval: 5 * time.Millisecond})
	waitFor(t, "the released and the expired job to succeed", func() bool { return w2.Stats().Succeeded == 2 })
	require.Equal(t, 1, b.job(t, ids[0]).Attempt)
	require.Equal(t, 2, b.job(t, ids[2]).Attempt)
	close(stuck)
	waitFor(t, "the stuck handler's late finish to be refused", func() bool { return w.Stats().LeaseLost == 1 })
}

// TestWorkerWakesOnEnqueue: an idle worker with a long poll interval
// claims a job enqueued through its Store at once.
func TestWorkerWakesOnEnqueue(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db)
	counter.Reset() // Open's probes
	ok := func(context.Context, *harmonia.Job, *worker.JobLogger) (any, error) { return nil, nil }
	w, _ := startWorker(t, b, worker.Options{Handlers: handlers(ok), PollInterval: time.Hour, Concurrency: 1})
	waitFor(t, "the first claim", func() bool { return counter.Count("find") > 0 })
	err := w.Run(b.ctx)
	require.ErrorIs(t, err, harmonia.ErrConflict, "a worker runs once at a time")

	b.enqueue(t, noop, nil, nil)
	waitFor(t, "the job to succeed", func() bool { return w.Stats().Succeeded == 1 })
}

// TestWorkerStatsCountFailures checks the counters of failed and claimed
// attempts against the jobs' records.
func TestWorkerStatsCountFailures(t *testing.T) {
	t.Parallel()
	b := setup(t)
	testenv.EnqueueNumbered(t, b.store, noop, 4)
	h := func(_ context.Context, job *harmonia.Job, _ *worker.JobLogger) (any, error) {
		if testenv.JobNumber(job)%2 == 0 {
			return nil, harmonia.Permanent(errors.New("no"))
		}
		return nil, nil
	}
	w, _ := startWorker(t, b, worker.Options{Handlers: handlers(h), PollInterval: 5 * time.Millisecond})
	waitFor(t, "four jobs to finish", func() bool { s := w.Stats(); return s.Succeeded+s.Failed == 4 })
	require.Equal(t, worker.Stats{Claimed: 4, Succeeded: 2, Failed: 2}, w.Stats())
	require.EqualValues(t, 2, countJobs(t, b, statusIs(harmonia.JobFailed)))
}

func TestNewWorkerValidatesConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ok := handlers(func(context.Context, *harmonia.Job, *worker.JobLogger) (any, error) { return nil, nil })
	for _, c := range []struct {
		field string
		cfg   worker.Options
	}{
		{"handlers", worker.Options{}},
		{"handlers", worker.Options{Handlers: map[harmonia.JobType]worker.Handler{noop: nil}}},
		{"handlers", worker.Options{Handlers: map[harmonia.JobType]worker.Handler{"Bad": ok[noop]}}},
		{"types", worker.Options{Handlers: ok, Types: []harmonia.JobType{harmonia.JobValidate}}},
		{"concurrency", worker.Options{Handlers: ok, Concurrency: -1}},
		{"lease_duration", worker.Options{Handlers: ok, LeaseDuration: time.Millisecond}},
		{"heartbeat_interval", worker.Options{Handlers: ok, HeartbeatInterval: time.Minute}},
		{"heartbeat_interval", worker.Options{Handlers: ok, PollInterval: -time.Second}},
		{"id", worker.Options{Handlers: ok, ID: "a\nb"}},
	} {
		_, err := worker.New(b.store, &c.cfg)
		he := requireInvalid(t, err, worker.EntityWorker, c.field)
		t.Logf("%s: %s", c.field, he.Reason)
	}
	_, err := worker.New(b.store, nil)
	requireInvalid(t, err, worker.EntityWorker, "handlers")
	_, err = worker.New(nil, &worker.Options{Handlers: ok})
	requireInvalid(t, err, worker.EntityWorker, "store")

	w, err := worker.New(b.store, &worker.Options{Handlers: ok, LeaseDuration: time.Minute})
	require.NoError(t, err)
	cfg := w.Options()
	require.Equal(t, worker.ConcurrencyDefault, cfg.Concurrency)
	require.Equal(t, time.Minute, cfg.LeaseDuration)
	require.Equal(t, 20*time.Second, cfg.HeartbeatInterval)
	require.Equal(t, worker.PollIntervalDefault, cfg.PollInterval)
	require.Equal(t, worker.ShutdownTimeoutDefault, cfg.ShutdownTimeout)
	require.Equal(t, []harmonia.JobType{noop}, cfg.Types)
	require.Contains(t, w.ID(), fmt.Sprintf("-%d-", os.Getpid()))
}
