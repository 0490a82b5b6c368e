package harmonia_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// TestBatchClaimCommandsConstant: claiming 1, 5 or 30 jobs costs the same
// two commands (a find and one update), every claimed job carries the
// claim's lease token, comes in claim order, and is returned as stored.
func TestBatchClaimCommandsConstant(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db)
	enqueueNumbered(t, b, 36)
	high := b.enqueue(t, noop, nil, &harmonia.EnqueueOpts{Priority: 5})
	var order []int
	for i, n := range []int{1, 5, 30} {
		counter.Reset()
		jobs, err := b.store.ClaimJobs(b.ctx, "w1", []harmonia.JobType{noop}, n, lease)
		require.NoError(t, err)
		require.Len(t, jobs, n)
		require.Equal(t, map[string]int{"find": 1, "update": 1}, counter.Counts(), "claim of %d", n)
		if i == 0 {
			require.Equal(t, high.ID, jobs[0].ID, "priority first")
			jobs = jobs[1:]
		}
		for _, j := range jobs {
			require.Equal(t, jobs[0].LeaseToken, j.LeaseToken, "one token per claim")
			require.Equal(t, harmonia.JobRunning, j.Status)
			require.Equal(t, 1, j.Attempt)
			require.Equal(t, b.clock.Now().Add(lease), *j.LeaseExpiresAt)
			require.Equal(t, j, b.job(t, j.ID))
			order = append(order, jobNumber(j))
		}
	}
	for i := range order {
		require.Equal(t, i, order[i], "run-after, then age")
	}
	jobs, err := b.store.ClaimJobs(b.ctx, "w1", []harmonia.JobType{noop}, 10, lease)
	require.NoError(t, err)
	require.Len(t, jobs, 1, "what is left")

	for _, n := range []int{0, harmonia.MaxClaimBatch + 1} {
		_, err = b.store.ClaimJobs(b.ctx, "w1", []harmonia.JobType{noop}, n, lease)
		requireInvalid(t, err, harmonia.EntityJob, "n")
	}
}

// TestBatchClaimConcurrentOneOwner: eight stores (as eight processes)
// claim batches of eight at once until the queue is empty: every job is
// claimed exactly once.
func TestBatchClaimConcurrentOneOwner(t *testing.T) {
	t.Parallel()
	const n = 160
	b := setup(t)
	enqueueNumbered(t, b, n)
	var mu sync.Mutex
	owners := make(map[bson.ObjectID][]string)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range 8 {
		s, err := harmonia.Open(b.ctx, b.db, &harmonia.Options{Now: b.clock.Now})
		require.NoError(t, err)
		wg.Go(func() {
			for {
				jobs, err := s.ClaimJobs(b.ctx, fmt.Sprintf("w%d", w), []harmonia.JobType{noop}, 8, lease)
				if err != nil || len(jobs) == 0 {
					errs[w] = err
					return
				}
				mu.Lock()
				for _, j := range jobs {
					owners[j.ID] = append(owners[j.ID], j.LeaseToken)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Len(t, owners, n)
	for id, tokens := range owners {
		require.Len(t, tokens, 1, "job %s claimed by %v", id.Hex(), tokens)
		require.Equal(t, tokens[0], b.job(t, id).LeaseToken)
	}
}

// TestBatchClaimTakesOverExpiredLeases: a batch claim takes over expired
// leases as ClaimJob does, recording the lost attempt, and fails a job
// whose expired attempt was its last.
func TestBatchClaimTakesOverExpiredLeases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	again := b.enqueue(t, noop, nil, nil)
	last := b.enqueue(t, noop, nil, &harmonia.EnqueueOpts{MaxAttempts: 1})
	stale, err := b.store.ClaimJobs(b.ctx, "w1", []harmonia.JobType{noop}, 2, lease)
	require.NoError(t, err)
	require.Len(t, stale, 2)
	b.clock.Advance(lease + time.Second)
	fresh := b.enqueue(t, noop, nil, nil)

	jobs, err := b.store.ClaimJobs(b.ctx, "w2", []harmonia.JobType{noop}, 3, lease)
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	require.Equal(t, again.ID, jobs[0].ID)
	require.Equal(t, fresh.ID, jobs[1].ID)
	require.Equal(t, 2, jobs[0].Attempt)
	require.Len(t, jobs[0].Errors, 1)
	require.Equal(t, "w1", jobs[0].Errors[0].WorkerID)
	require.Contains(t, jobs[0].Errors[0].Error, "lease expired")
	require.Equal(t, jobs[0], b.job(t, again.ID))
	got := b.job(t, last.ID)
	require.Equal(t, harmonia.JobFailed, got.Status)
	require.Contains(t, got.Error, "lease expired")
	requireLeaseLost(t, b.store.CompleteJob(b.ctx, stale[0], nil))
}

// TestBatchFinishRefusesStalePerJob: FinishJobs records three outcomes in
// one update; the one whose lease another worker took over is refused
// alone (one more read tells which), and a bad result is refused before
// anything is written.
func TestBatchFinishRefusesStalePerJob(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db, func(o *harmonia.Options) { o.JobBackoffBase = time.Minute })
	enqueueNumbered(t, b, 4)
	jobs, err := b.store.ClaimJobs(b.ctx, "w1", []harmonia.JobType{noop}, 4, lease)
	require.NoError(t, err)
	require.Len(t, jobs, 4)
	b.clock.Advance(lease / 2)
	require.NoError(t, b.store.Heartbeat(b.ctx, jobs[0], lease))
	require.NoError(t, b.store.Heartbeat(b.ctx, jobs[2], lease))
	require.NoError(t, b.store.Heartbeat(b.ctx, jobs[3], lease))
	b.clock.Advance(lease/2 + time.Second)
	taken, err := b.store.ClaimJobs(b.ctx, "w2", []harmonia.JobType{noop}, 4, lease)
	require.NoError(t, err)
	require.Len(t, taken, 1)
	require.Equal(t, jobs[1].ID, taken[0].ID)

	counter.Reset()
	errs, err := b.store.FinishJobs(b.ctx, []harmonia.JobOutcome{
		{Job: jobs[0], Result: bson.D{{Key: "ok", Value: 1}}},
		{Job: jobs[1], Result: bson.D{{Key: "ok", Value: 1}}},
		{Job: jobs[2], Err: errors.New("flaky")},
		{Job: jobs[3], Result: 42},
	})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	requireLeaseLost(t, errs[1])
	require.NoError(t, errs[2])
	requireInvalid(t, errs[3], harmonia.EntityJob, "result")
	require.Equal(t, map[string]int{"update": 1, "find": 1}, counter.Counts())

	require.Equal(t, harmonia.JobSuccess, jobs[0].Status)
	require.Equal(t, jobs[0], b.job(t, jobs[0].ID))
	require.Equal(t, taken[0], b.job(t, jobs[1].ID), "the stale outcome changed nothing")
	require.Equal(t, harmonia.JobPending, jobs[2].Status, "retried")
	require.Equal(t, jobs[2], b.job(t, jobs[2].ID))
	require.Equal(t, harmonia.JobRunning, b.job(t, jobs[3].ID).Status)

	counter.Reset()
	errs, err = b.store.FinishJobs(b.ctx, []harmonia.JobOutcome{{Job: taken[0]}, {Job: jobs[3]}})
	require.NoError(t, err)
	require.Equal(t, []error{nil, nil}, errs)
	require.Equal(t, map[string]int{"update": 1}, counter.Counts(), "all recorded: no read")
}

// TestBatchWorkerBuffersLogs: a worker's log lines reach the events
// collection and the log tail with the job's next heartbeat (which
// carries the new lease in the same update), or with its outcome, not
// when the handler logs them.
func TestBatchWorkerBuffersLogs(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db)
	j := b.enqueue(t, noop, nil, nil)
	logged, finish := make(chan struct{}), make(chan struct{})
	h := func(ctx context.Context, job *harmonia.Job, log *harmonia.JobLogger) (any, error) {
		require.NoError(t, log.Log(ctx, harmonia.LevelInfo, "first"))
		require.NoError(t, log.Log(ctx, harmonia.LevelInfo, "second"))
		close(logged)
		<-finish
		return nil, log.Log(ctx, harmonia.LevelInfo, "last")
	}
	w, _ := startWorker(t, b, harmonia.WorkerOptions{Handlers: handlers(h), Concurrency: 1, PollInterval: time.Hour,
		HeartbeatInterval: 2 * time.Second})
	<-logged
	events, err := b.store.JobLog(b.ctx, j.ID)
	require.NoError(t, err)
	require.Empty(t, events, "buffered until the heartbeat")
	b.clock.Advance(time.Minute)
	// The lines' events are inserted first, then the heartbeat's update
	// extends the lease and writes the log tail.
	want := b.clock.Now().Add(harmonia.LeaseDurationDefault)
	waitFor(t, "the heartbeat", func() bool { return b.job(t, j.ID).LeaseExpiresAt.Equal(want) })
	got := b.job(t, j.ID)
	require.Len(t, got.LogTail, 2, "the lines came with the heartbeat")
	events, err = b.store.JobLog(b.ctx, j.ID)
	require.NoError(t, err)
	require.Len(t, events, 2)
	inserts := counter.Count("insert")
	close(finish)
	waitFor(t, "the job to succeed", func() bool { return w.Stats().Succeeded == 1 })
	events, err = b.store.JobLog(b.ctx, j.ID)
	require.NoError(t, err)
	require.Len(t, events, 3)
	require.Equal(t, "last", events[2].Message)
	got = b.job(t, j.ID)
	require.Len(t, got.LogTail, 3)
	require.Equal(t, harmonia.JobSuccess, got.Status)
	require.Equal(t, inserts+1, counter.Count("insert"), "the last line came with the outcome, in one insert")
}

// TestCancelRunningJobSeenAtHeartbeat: cancelling a running job cancels
// its handler's context at the next heartbeat, with ErrJobCancelled as
// the cause, and the handler's outcome is dropped.
func TestCancelRunningJobSeenAtHeartbeat(t *testing.T) {
	t.Parallel()
	b := setup(t)
	j := b.enqueue(t, noop, nil, nil)
	causes := make(chan error, 1)
	h := func(ctx context.Context, _ *harmonia.Job, _ *harmonia.JobLogger) (any, error) {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return bson.D{{Key: "late", Value: true}}, nil
	}
	w, _ := startWorker(t, b, harmonia.WorkerOptions{Handlers: handlers(h), HeartbeatInterval: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	waitFor(t, "the job to run", func() bool { return b.job(t, j.ID).Status == harmonia.JobRunning })
	_, err := b.store.CancelJob(b.ctx, j.ID)
	require.NoError(t, err)
	select {
	case cause := <-causes:
		require.ErrorIs(t, cause, harmonia.ErrJobCancelled)
	case <-time.After(90 * time.Second):
		t.Fatal("the handler was not cancelled")
	}
	waitFor(t, "the cancellation to be counted", func() bool { return w.Stats().Cancelled == 1 })
	got := b.job(t, j.ID)
	require.Equal(t, harmonia.JobCancelled, got.Status)
	require.Empty(t, got.Result)
	s := w.Stats()
	require.Zero(t, s.Succeeded+s.LeaseLost)
}

// TestBatchHeartbeatsOneCommand: a worker running four jobs extends their
// four leases with one update command per round, measured with a command
// monitor that reads each update's statements.
func TestBatchHeartbeatsOneCommand(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var beats []int // statements of each update that extends leases
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "update" {
			return
		}
		docs, err := e.Command.LookupErr("updates")
		if err != nil {
			return
		}
		vals, _ := docs.Array().Values()
		n := 0
		for _, v := range vals {
			_, lease := v.Document().LookupErr("u", "$set", "lease_expires_at")
			_, status := v.Document().LookupErr("u", "$set", "status")
			if lease == nil && status != nil {
				n++
			}
		}
		if n > 0 {
			mu.Lock()
			beats = append(beats, n)
			mu.Unlock()
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(harmoniatest.CurrentLane(t).URI).SetMonitor(mon))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	b := setupOn(t, client.Database(harmoniatest.Database(t).Name()))
	enqueueNumbered(t, b, 4)
	release := make(chan struct{})
	h := func(ctx context.Context, _ *harmonia.Job, _ *harmonia.JobLogger) (any, error) {
		<-release
		return nil, nil
	}
	w, _ := startWorker(t, b, harmonia.WorkerOptions{Handlers: handlers(h), Concurrency: 4, HeartbeatInterval: 100 * time.Millisecond})
	waitFor(t, "four jobs to run", func() bool { return w.Stats().Claimed == 4 })
	b.clock.Advance(time.Minute)
	want := b.clock.Now().Add(harmonia.LeaseDurationDefault)
	waitFor(t, "a heartbeat of every job", func() bool {
		return countJobs(t, b, bson.D{{Key: "lease_expires_at", Value: want}}) == 4
	})
	mu.Lock()
	got := slices.Clone(beats)
	mu.Unlock()
	close(release)
	waitFor(t, "the jobs to succeed", func() bool { return w.Stats().Succeeded == 4 })
	require.NotEmpty(t, got)
	for _, n := range got {
		require.Equal(t, 4, n, "every round extends the four leases in one command: %v", got)
	}
}
