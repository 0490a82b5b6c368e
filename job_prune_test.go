package harmonia_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/testenv"
)

// idle is a job type no test worker claims: its jobs stay pending.
const idle harmonia.JobType = "idle"

// runningJob enqueues a noop job and claims it; the caller makes sure no
// other noop job is pending.
func (b *bundle) runningJob(t *testing.T, opts *harmonia.EnqueueOpts, logLines int) *harmonia.Job {
	t.Helper()
	id := b.enqueue(t, noop, nil, opts).ID
	j := b.claim(t, "w")
	require.NotNil(t, j)
	require.Equal(t, id, j.ID)
	for i := range logLines {
		require.NoError(t, b.store.Queue().AppendLog(b.ctx, j, harmonia.LevelInfo, fmt.Sprint("line ", i)))
	}
	return j
}

func (b *bundle) jobIDs(t *testing.T) []bson.ObjectID {
	t.Helper()
	var ids []bson.ObjectID
	for id := range testenv.AllJobs(t, b.db) {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}

func (b *bundle) eventCount(t *testing.T, id bson.ObjectID) int {
	t.Helper()
	ev, err := b.store.Queue().JobLog(b.ctx, id)
	require.NoError(t, err)
	return len(ev)
}

func compareIDs(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) }

func sortedIDs(js ...*harmonia.Job) []bson.ObjectID {
	out := make([]bson.ObjectID, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	slices.SortFunc(out, compareIDs)
	return out
}

func TestPruneJobsRemovesOldFinishedJobsAndTheirEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := b.clock.Now()
	// Finished at start: a success, a failure, a cancelled job.
	succeeded := b.runningJob(t, nil, 2)
	require.NoError(t, b.store.Queue().CompleteJob(b.ctx, succeeded, nil))
	failed := b.runningJob(t, &harmonia.EnqueueOpts{MaxAttempts: 1}, 1)
	require.NoError(t, b.store.Queue().FailJob(b.ctx, failed, errors.New("boom")))
	cancelled, err := b.store.Queue().CancelJob(b.ctx, b.enqueue(t, idle, nil, nil).ID)
	require.NoError(t, err)
	// Not finished, though old: pending, running (its lease will have
	// expired), and a failed attempt waiting for its retry.
	pending := b.enqueue(t, idle, nil, nil)
	retrying := b.runningJob(t, &harmonia.EnqueueOpts{MaxAttempts: 3}, 1)
	require.NoError(t, b.store.Queue().FailJob(b.ctx, retrying, errors.New("try again")))
	require.Equal(t, harmonia.JobPending, retrying.Status)
	running := b.runningJob(t, nil, 1)
	// Finished an hour later.
	b.clock.Advance(time.Hour)
	// Its priority puts it before the retry and the expired lease, due now.
	recent := b.runningJob(t, &harmonia.EnqueueOpts{Priority: 10}, 1)
	require.NoError(t, b.store.Queue().CompleteJob(b.ctx, recent, nil))

	cutoff := start.Add(30 * time.Minute)
	res, err := b.store.Queue().PruneJobs(b.ctx, cutoff, &harmonia.PruneOpts{BatchSize: 2})
	require.NoError(t, err)
	require.Equal(t, harmonia.PruneResult{Jobs: 3, Events: 3, Batches: 2}, *res)
	require.Equal(t, sortedIDs(pending, retrying, running, recent), b.jobIDs(t))
	for _, j := range []*harmonia.Job{succeeded, failed, cancelled} {
		require.Zero(t, b.eventCount(t, j.ID), "the events of a pruned job go with it")
	}
	for _, j := range []*harmonia.Job{retrying, running, recent} {
		require.Equal(t, 1, b.eventCount(t, j.ID), "the events of a kept job stay")
	}

	res, err = b.store.Queue().PruneJobs(b.ctx, cutoff, nil)
	require.NoError(t, err)
	require.Equal(t, harmonia.PruneResult{}, *res, "a second run finds nothing")

	res, err = b.store.Queue().PruneJobs(b.ctx, b.clock.Now().Add(time.Millisecond), nil)
	require.NoError(t, err)
	require.Equal(t, harmonia.PruneResult{Jobs: 1, Events: 1, Batches: 1}, *res)
	require.Equal(t, sortedIDs(pending, retrying, running), b.jobIDs(t), "pending and running jobs are never pruned")
	require.NoError(t, b.store.Queue().CompleteJob(b.ctx, running, nil), "the running job kept its lease")
}

func TestPruneJobsRefusesBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	j := b.runningJob(t, nil, 0)
	require.NoError(t, b.store.Queue().CompleteJob(b.ctx, j, nil))
	later := b.clock.Now().Add(time.Hour)
	for _, tc := range []struct {
		cutoff time.Time
		opts   *harmonia.PruneOpts
		field  string
	}{
		{time.Time{}, nil, "older_than"},
		{later, &harmonia.PruneOpts{BatchSize: -1}, "batch_size"},
		{later, &harmonia.PruneOpts{BatchSize: harmonia.PruneBatchSizeMax + 1}, "batch_size"},
	} {
		res, err := b.store.Queue().PruneJobs(b.ctx, tc.cutoff, tc.opts)
		require.Nil(t, res)
		requireInvalid(t, err, harmonia.EntityJob, tc.field)
	}
	require.Equal(t, sortedIDs(j), b.jobIDs(t), "a refused prune deletes nothing")
	res, err := b.store.Queue().PruneJobs(b.ctx, later, &harmonia.PruneOpts{BatchSize: harmonia.PruneBatchSizeMax})
	require.NoError(t, err)
	require.Equal(t, int64(1), res.Jobs)
}

// TestPruneKeepsAJobThatLeftItsFinalState: the delete is conditioned on
// the final status, not on what the batch's read saw.
func TestPruneKeepsAJobThatLeftItsFinalState(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var finished []*harmonia.Job
	for range 4 {
		j := b.runningJob(t, nil, 0)
		require.NoError(t, b.store.Queue().CompleteJob(b.ctx, j, nil))
		finished = append(finished, j)
	}
	requeued := finished[2]
	harmonia.SetPruneHook(b.store, func(ctx context.Context, ids []bson.ObjectID) {
		require.Contains(t, ids, requeued.ID)
		_, err := b.db.Collection(harmonia.CollectionJobs).UpdateOne(ctx, bson.D{{Key: "_id", Value: requeued.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: harmonia.JobPending}}}})
		require.NoError(t, err)
	})
	res, err := b.store.Queue().PruneJobs(b.ctx, b.clock.Now().Add(time.Second), nil)
	require.NoError(t, err)
	require.Equal(t, int64(3), res.Jobs)
	require.Equal(t, sortedIDs(requeued), b.jobIDs(t))
	require.Equal(t, harmonia.JobPending, b.job(t, requeued.ID).Status)
}

// TestPruneUnderConcurrentClaimsNeverRemovesPendingOrRunningJobs: prune
// under concurrent claims never removes a pending or running job. Workers
// claim, log and complete jobs while a pruner deletes every finished job
// as soon as it finishes: every job is claimed and completed exactly once
// (a pending job pruned would never be claimed; a running one pruned
// would refuse its worker's log and completion), and jobs that stay
// pending or running throughout remain.
func TestPruneUnderConcurrentClaimsNeverRemovesPendingOrRunningJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n, workers = 60, 3
	held := harmonia.JobType("held")
	var keep []*harmonia.Job
	for range 3 {
		keep = append(keep, b.enqueue(t, idle, nil, nil))
		b.enqueue(t, held, nil, nil)
	}
	var running []*harmonia.Job
	for range 3 {
		j := b.claim(t, "holder", held)
		require.NotNil(t, j)
		running = append(running, j)
	}
	for range n {
		b.enqueue(t, noop, nil, nil)
	}
	cutoff := b.clock.Now().Add(time.Hour) // every finished job is due at once

	var completed atomic.Int64
	errs := make(chan error, n*workers+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			id := fmt.Sprint("w", w)
			for {
				j, err := b.store.Queue().ClaimJob(b.ctx, id, []harmonia.JobType{noop}, lease)
				if err != nil || j == nil {
					errs <- err
					return
				}
				if err := b.store.Queue().AppendLog(b.ctx, j, harmonia.LevelInfo, "working"); err != nil {
					errs <- fmt.Errorf("log of %s: %w", j.ID.Hex(), err)
					continue
				}
				if err := b.store.Queue().CompleteJob(b.ctx, j, nil); err != nil {
					errs <- fmt.Errorf("completion of %s: %w", j.ID.Hex(), err)
					continue
				}
				completed.Add(1)
			}
		})
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	var pruned harmonia.PruneResult
	var whileRunning int64
	for done := false; !done; {
		select {
		case <-workersDone:
			done = true
		default:
		}
		res, err := b.store.Queue().PruneJobs(b.ctx, cutoff, &harmonia.PruneOpts{BatchSize: 4})
		require.NoError(t, err)
		pruned.Jobs += res.Jobs
		pruned.Events += res.Events
		if !done {
			whileRunning += res.Jobs
		}
	}
	t.Logf("%d of %d jobs pruned while the workers ran", whileRunning, n)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int64(n), completed.Load(), "every job was claimed and completed once")
	require.Equal(t, int64(n), pruned.Jobs, "every finished job was pruned, the last run after the workers stopped")
	require.Equal(t, int64(n), pruned.Events)
	require.Equal(t, sortedIDs(append(keep, running...)...), b.jobIDs(t), "pending and running jobs remain")
	for _, j := range running {
		require.NoError(t, b.store.Queue().CompleteJob(b.ctx, j, nil), "a running job kept its lease")
	}
}

// TestPruneTTLIndexes: EnsureJobTTL creates the TTL indexes where the
// server has them, and says it has none on the embedded server.
func TestPruneTTLIndexes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireInvalid(t, b.store.Queue().EnsureJobTTL(b.ctx, time.Millisecond), "index", "expire_after")
	err := b.store.Queue().EnsureJobTTL(b.ctx, 30*24*time.Hour)
	indexes := func(col string) map[string]*int32 {
		specs, err := b.db.Collection(col).Indexes().ListSpecifications(b.ctx)
		require.NoError(t, err)
		out := map[string]*int32{}
		for _, s := range specs {
			out[s.Name] = s.ExpireAfterSeconds
		}
		return out
	}
	if b.store.Capabilities().FerretDB {
		requireInvalid(t, err, "index", "expire_after")
		require.ErrorIs(t, err, harmonia.ErrTTLUnsupported)
		require.NotContains(t, indexes(harmonia.CollectionJobs), harmonia.JobTTLIndex, "nothing is left behind")
		return
	}
	require.NoError(t, err)
	for _, week := range []int32{30 * 24 * 3600, 7 * 24 * 3600} {
		require.NoError(t, b.store.Queue().EnsureJobTTL(b.ctx, time.Duration(week)*time.Second))
		jobs, events := indexes(harmonia.CollectionJobs), indexes(harmonia.CollectionEvents)
		require.NotNil(t, jobs[harmonia.JobTTLIndex])
		require.Equal(t, week, *jobs[harmonia.JobTTLIndex])
		require.NotNil(t, events[harmonia.EventTTLIndex])
		require.Equal(t, week, *events[harmonia.EventTTLIndex])
	}
}
