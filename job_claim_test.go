package harmonia_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/testenv"
)

// TestBatchClaimCommandsConstant: claiming 1, 5 or 30 jobs costs the same
// two commands (a find and one update), every claimed job carries the
// claim's lease token, comes in claim order, and is returned as stored.
func TestBatchClaimCommandsConstant(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db)
	testenv.EnqueueNumbered(t, b.store, noop, 36)
	high := b.enqueue(t, noop, nil, &harmonia.EnqueueOpts{Priority: 5})
	var order []int
	for i, n := range []int{1, 5, 30} {
		counter.Reset()
		jobs, err := b.store.Queue().ClaimJobs(b.ctx, "w1", []harmonia.JobType{noop}, n, lease)
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
			require.Equal(t, asStored(j), b.job(t, j.ID))
			order = append(order, testenv.JobNumber(j))
		}
	}
	for i := range order {
		require.Equal(t, i, order[i], "run-after, then age")
	}
	jobs, err := b.store.Queue().ClaimJobs(b.ctx, "w1", []harmonia.JobType{noop}, 10, lease)
	require.NoError(t, err)
	require.Len(t, jobs, 1, "what is left")

	for _, n := range []int{0, harmonia.MaxClaimBatch + 1} {
		_, err = b.store.Queue().ClaimJobs(b.ctx, "w1", []harmonia.JobType{noop}, n, lease)
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
	testenv.EnqueueNumbered(t, b.store, noop, n)
	var mu sync.Mutex
	owners := make(map[bson.ObjectID][]string)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range 8 {
		s, err := harmonia.Open(b.ctx, b.db, &harmonia.Options{Test: &harmonia.TestOptions{Now: b.clock.Now}, LeaseClock: harmonia.LeaseClockLocal})
		require.NoError(t, err)
		wg.Go(func() {
			for {
				jobs, err := s.Queue().ClaimJobs(b.ctx, fmt.Sprintf("w%d", w), []harmonia.JobType{noop}, 8, lease)
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
	stale, err := b.store.Queue().ClaimJobs(b.ctx, "w1", []harmonia.JobType{noop}, 2, lease)
	require.NoError(t, err)
	require.Len(t, stale, 2)
	b.clock.Advance(lease + time.Second)
	fresh := b.enqueue(t, noop, nil, nil)

	jobs, err := b.store.Queue().ClaimJobs(b.ctx, "w2", []harmonia.JobType{noop}, 3, lease)
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	require.Equal(t, again.ID, jobs[0].ID)
	require.Equal(t, fresh.ID, jobs[1].ID)
	require.Equal(t, 2, jobs[0].Attempt)
	require.Len(t, jobs[0].Errors, 1)
	require.Equal(t, "w1", jobs[0].Errors[0].WorkerID)
	require.Contains(t, jobs[0].Errors[0].Error, "lease expired")
	require.Equal(t, asStored(jobs[0]), b.job(t, again.ID))
	got := b.job(t, last.ID)
	require.Equal(t, harmonia.JobFailed, got.Status)
	require.Contains(t, got.Error, "lease expired")
	requireLeaseLost(t, b.store.Queue().CompleteJob(b.ctx, stale[0], nil))
}
