package worker_test

import (
	"context"
	"fmt"
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

// overlapCounter tells whether a job ever ran in two live handlers at once.
type overlapCounter struct {
	active, runs sync.Map // job id → *atomic.Int32
	overlaps     atomic.Int32
}

// enter marks job as running and returns the function that marks it done.
func (o *overlapCounter) enter(id bson.ObjectID) func() {
	a, _ := o.active.LoadOrStore(id, new(atomic.Int32))
	r, _ := o.runs.LoadOrStore(id, new(atomic.Int32))
	if a.(*atomic.Int32).Add(1) > 1 {
		o.overlaps.Add(1)
	}
	r.(*atomic.Int32).Add(1)
	return func() { a.(*atomic.Int32).Add(-1) }
}

// TestBatchClaimAbandonedWorkers: 8 workers claim batches of up to 8 of
// 500 jobs. Two of them (20%) are abandoned mid-run: after a few jobs
// their handlers hang and nothing heart-beats (the interval is an hour),
// as if the process froze; once the others are done, they stop (their
// frozen handlers outlive the shutdown, so their jobs are left to their
// leases). The clock passes the lease: the abandoned jobs are claimed
// again and succeed, no job ran in two live handlers at once, none was
// lost, and when the frozen handlers finally return every one of their
// finishes is refused.
func TestBatchClaimAbandonedWorkers(t *testing.T) {
	t.Parallel()
	const n, workers, abandoned = 500, 8, 2
	b := setup(t)
	testenv.EnqueueNumbered(t, b.store, noop, n)
	var live overlapCounter
	thaw := make(chan struct{})
	var frozen atomic.Int32
	h := func(idx int, done *atomic.Int32) worker.Handler {
		return func(ctx context.Context, job *harmonia.Job, log *worker.JobLogger) (any, error) {
			if idx < abandoned && done.Add(1) > 5 {
				frozen.Add(1)
				<-thaw
				return bson.D{{Key: "by", Value: idx}}, nil
			}
			defer live.enter(job.ID)()
			return bson.D{{Key: "by", Value: idx}}, log.Log(ctx, harmonia.LevelInfo, "ran")
		}
	}
	start := time.Now()
	var ws []*worker.Worker
	var stops []func() error
	for i := range workers {
		w, stop := runWorker(t, b.ctx, b.store, worker.Options{ID: fmt.Sprintf("w%d", i), Concurrency: 8, ClaimPool: b.pool,
			Handlers: handlers(h(i, new(atomic.Int32))), PollInterval: 20 * time.Millisecond,
			LeaseDuration: time.Hour, HeartbeatInterval: 59 * time.Minute, ShutdownTimeout: 10 * time.Millisecond})
		ws, stops = append(ws, w), append(stops, stop)
	}
	testenv.WaitWithin(t, 5*time.Minute, "the live workers to finish the other jobs", func() bool {
		f := frozen.Load()
		return f > 0 && sumStats(ws).Succeeded == n-int64(f)
	})
	f := frozen.Load()
	require.LessOrEqual(t, f, int32(abandoned*8), "an abandoned worker holds at most its batch")
	require.EqualValues(t, f, countJobs(t, b, statusIs(harmonia.JobRunning)))
	for _, stop := range stops[:abandoned] {
		_ = stop() // the frozen handlers outlive the shutdown: their jobs are left to their leases
	}

	b.clock.Advance(time.Hour + time.Second)
	testenv.WaitWithin(t, 5*time.Minute, "the abandoned jobs to be claimed again", func() bool { return sumStats(ws).Succeeded == n })
	close(thaw)
	testenv.WaitWithin(t, 2*time.Minute, "the frozen finishes to be refused", func() bool { return sumStats(ws).LeaseLost == int64(f) })

	stats := sumStats(ws)
	require.Zero(t, live.overlaps.Load(), "jobs run by two live handlers at once")
	require.EqualValues(t, n+f, stats.Claimed)
	require.Zero(t, stats.Failed)
	jobs := testenv.AllJobs(t, b.db)
	require.Len(t, jobs, n)
	reclaimed := 0
	for _, j := range jobs {
		require.Equal(t, harmonia.JobSuccess, j.Status)
		if j.Attempt == 2 {
			reclaimed++
			require.Contains(t, j.Errors[0].Error, "lease expired")
			require.GreaterOrEqual(t, int(j.Result.Lookup("by").Int32()), abandoned, "job %s: recorded by a live worker", j.ID.Hex())
		}
	}
	require.EqualValues(t, f, reclaimed)
	t.Logf("%d jobs, %d workers (%d abandoned, %d jobs frozen): %d claims, %d stale finishes refused, %s",
		n, workers, abandoned, f, stats.Claimed, stats.LeaseLost, time.Since(start).Round(time.Millisecond))
}

// TestLeaseHeldAgainstSlowServer: 8 workers of one process, sharing a
// claim pool as such workers should, with 1 s leases run jobs that
// outlast a lease, against a server that holds every update and find of
// theirs for a fifth of a lease before running it. The Store keeps real
// time, and its leases are on the server's clock where the server has
// one. No live worker loses a lease, and no job runs twice.
//
// A heartbeat leaves a third of a lease after the last extension and is
// held a fifth of a lease: the margin the test relies on is what is left,
// slowLeaseMargin. A starved machine can stall longer than that; when a
// lease is lost and a harmoniatest.StallProbe measured a stall past the
// margin, the test skips naming the stall, and fails otherwise.
//
// It does not run in parallel: other tests' commands queue at the same
// server and would slow it past the fail point's fifth of a lease.
func TestLeaseHeldAgainstSlowServer(t *testing.T) {
	t.Run("one shared pool", func(t *testing.T) { leaseHeldAgainstSlowServer(t, true) })
	t.Run("a pool per worker", func(t *testing.T) { leaseHeldAgainstSlowServer(t, false) })
}

// leaseHeldAgainstSlowServer runs TestLeaseHeldAgainstSlowServer with its
// workers sharing one claim pool, or each with its own: then they compete
// for the same jobs and a claim may read and stamp several times, longer
// than a lease, and the lease is still counted from the stamp that won
// (Job.ClaimSent), not from when the worker asked.
func leaseHeldAgainstSlowServer(t *testing.T, shared bool) {
	const leaseDuration, block = time.Second, 200 * time.Millisecond
	const slowLeaseMargin = leaseDuration - leaseDuration/3 - block
	b, failPoint, _ := failPointStore(t)
	store, err := harmonia.Open(b.ctx, b.db, nil)
	require.NoError(t, err)
	t.Logf("lane %s: leases on the %s clock", harmoniatest.CurrentLane(t).Name, store.Queue().LeaseClock())
	const n = 32
	testenv.EnqueueNumbered(t, b.store, noop, n)
	var o overlapCounter
	h := func(ctx context.Context, job *harmonia.Job, log *worker.JobLogger) (any, error) {
		defer o.enter(job.ID)()
		select {
		case <-time.After(time.Duration(1000+40*testenv.JobNumber(job)) * time.Millisecond):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		return nil, log.Log(ctx, harmonia.LevelInfo, "slept")
	}
	failPoint("alwaysOn", bson.D{{Key: "failCommands", Value: bson.A{"update", "find", "insert"}},
		{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: block.Milliseconds()}})
	probe := harmoniatest.StartStallProbe(t)
	var pool *harmonia.ClaimPool // nil: each worker claims through a pool of its own, the default
	if shared {
		pool = harmonia.NewClaimPool(store)
	}
	var ws []*worker.Worker
	for i := range 8 {
		w, _ := runWorker(t, b.ctx, store, worker.Options{ID: fmt.Sprintf("w%d", i), Concurrency: 2, ClaimPool: pool,
			Handlers: handlers(h), LeaseDuration: leaseDuration, PollInterval: 50 * time.Millisecond})
		ws = append(ws, w)
	}
	// A lost lease ends the wait: the assertions below then tell whether
	// the machine stalled past the margin. The bound only guards a hang.
	testenv.WaitWithin(t, 5*time.Minute, "every job to succeed or a lease to be lost", func() bool {
		s := sumStats(ws)
		return s.Succeeded == n || s.LeaseLost > 0
	})
	stats := sumStats(ws)
	t.Logf("%d claims, %d leases lost; %s", stats.Claimed, stats.LeaseLost, probe.Stall())
	probe.Require(t, stats.LeaseLost == 0, slowLeaseMargin, "%d live leases lost", stats.LeaseLost)
	probe.Require(t, o.overlaps.Load() == 0, slowLeaseMargin, "%d jobs ran in two handlers at once", o.overlaps.Load())
	probe.Require(t, stats.Claimed == n, slowLeaseMargin, "%d claims of %d jobs: a job ran twice", stats.Claimed, n)
	require.EqualValues(t, n, countJobs(t, b, bson.D{{Key: "status", Value: harmonia.JobSuccess}, {Key: "attempt", Value: 1}}))
}

// TestLeaseServerClockSkewedWorkers: two worker processes whose clocks
// are two hours apart run jobs that outlast a lease, heart-beating on
// the server's clock: no live worker loses a lease and no job runs
// twice. A heartbeat leaves a quarter of a lease after the last
// extension: the rest is the margin a harmoniatest.StallProbe's stall
// must pass for a lost lease to skip rather than fail.
func TestLeaseServerClockSkewedWorkers(t *testing.T) {
	const leaseDuration, heartbeat = time.Second, 250 * time.Millisecond
	t.Parallel()
	harmoniatest.RequireServerClock(t)
	db := harmoniatest.Database(t)
	ctx := t.Context()
	const n = 12
	behind := testenv.SkewedStore(t, db, -time.Hour, harmonia.LeaseClockServer)
	for i := range n {
		_, err := behind.Queue().Enqueue(ctx, noop, bson.D{{Key: "n", Value: i}}, nil)
		require.NoError(t, err)
	}
	var o overlapCounter
	h := func(ctx context.Context, job *harmonia.Job, log *worker.JobLogger) (any, error) {
		defer o.enter(job.ID)()
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		return nil, log.Log(ctx, harmonia.LevelInfo, "slept past a lease")
	}
	probe := harmoniatest.StartStallProbe(t)
	var ws []*worker.Worker
	for i, skew := range []time.Duration{-time.Hour, time.Hour} {
		w, _ := runWorker(t, ctx, testenv.SkewedStore(t, db, skew, harmonia.LeaseClockServer), worker.Options{
			ID: fmt.Sprintf("skewed-%d", i), Concurrency: 4, Handlers: handlers(h),
			LeaseDuration: leaseDuration, HeartbeatInterval: heartbeat, PollInterval: 20 * time.Millisecond})
		ws = append(ws, w)
	}
	// A lost lease ends the wait: the assertions below then tell whether
	// the machine stalled past the margin. The bound only guards a hang.
	testenv.WaitWithin(t, 5*time.Minute, "every job to succeed or a lease to be lost", func() bool {
		s := sumStats(ws)
		return s.Succeeded == n || s.LeaseLost > 0
	})
	stats := sumStats(ws)
	t.Logf("%d claims, %d leases lost; %s", stats.Claimed, stats.LeaseLost, probe.Stall())
	const margin = leaseDuration - heartbeat
	probe.Require(t, stats.LeaseLost == 0, margin, "%d live leases lost", stats.LeaseLost)
	probe.Require(t, o.overlaps.Load() == 0, margin, "%d jobs ran in two handlers at once", o.overlaps.Load())
	probe.Require(t, stats.Claimed == n, margin, "%d claims of %d jobs: a job was claimed twice", stats.Claimed, n)
	for i, w := range ws {
		require.NotZero(t, w.Stats().Succeeded, "worker %d ran no job", i)
	}
	n1, err := db.Collection(harmonia.CollectionJobs).CountDocuments(ctx, bson.D{{Key: "status", Value: harmonia.JobSuccess}, {Key: "attempt", Value: 1}})
	require.NoError(t, err)
	require.EqualValues(t, n, n1)
}
