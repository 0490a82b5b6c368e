package worker_test

import (
	"context"
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
	"github.com/harmonia-ml/harmonia/internal/testenv"
	"github.com/harmonia-ml/harmonia/worker"
)

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
	h := func(ctx context.Context, job *harmonia.Job, log *worker.JobLogger) (any, error) {
		require.NoError(t, log.Log(ctx, harmonia.LevelInfo, "first"))
		require.NoError(t, log.Log(ctx, harmonia.LevelInfo, "second"))
		close(logged)
		<-finish
		return nil, log.Log(ctx, harmonia.LevelInfo, "last")
	}
	w, _ := startWorker(t, b, worker.Options{Handlers: handlers(h), Concurrency: 1, PollInterval: time.Hour,
		HeartbeatInterval: 2 * time.Second})
	<-logged
	events, err := b.store.Queue().JobLog(b.ctx, j.ID)
	require.NoError(t, err)
	require.Empty(t, events, "buffered until the heartbeat")
	b.clock.Advance(time.Minute)
	// The lines' events are inserted first, then the heartbeat's update
	// extends the lease and writes the log tail.
	want := b.clock.Now().Add(worker.LeaseDurationDefault)
	waitFor(t, "the heartbeat", func() bool { return b.job(t, j.ID).LeaseExpiresAt.Equal(want) })
	got := b.job(t, j.ID)
	require.Len(t, got.LogTail, 2, "the lines came with the heartbeat")
	events, err = b.store.Queue().JobLog(b.ctx, j.ID)
	require.NoError(t, err)
	require.Len(t, events, 2)
	inserts := counter.Count("insert")
	close(finish)
	waitFor(t, "the job to succeed", func() bool { return w.Stats().Succeeded == 1 })
	events, err = b.store.Queue().JobLog(b.ctx, j.ID)
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
	h := func(ctx context.Context, _ *harmonia.Job, _ *worker.JobLogger) (any, error) {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return bson.D{{Key: "late", Value: true}}, nil
	}
	w, _ := startWorker(t, b, worker.Options{Handlers: handlers(h), HeartbeatInterval: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	waitFor(t, "the job to run", func() bool { return b.job(t, j.ID).Status == harmonia.JobRunning })
	_, err := b.store.Queue().CancelJob(b.ctx, j.ID)
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
	testenv.EnqueueNumbered(t, b.store, noop, 4)
	release := make(chan struct{})
	h := func(ctx context.Context, _ *harmonia.Job, _ *worker.JobLogger) (any, error) {
		<-release
		return nil, nil
	}
	w, _ := startWorker(t, b, worker.Options{Handlers: handlers(h), Concurrency: 4, HeartbeatInterval: 100 * time.Millisecond})
	waitFor(t, "four jobs to run", func() bool { return w.Stats().Claimed == 4 })
	b.clock.Advance(time.Minute)
	want := b.clock.Now().Add(worker.LeaseDurationDefault)
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
