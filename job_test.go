package harmonia_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// noop is a job type of the tests' own.
const noop harmonia.JobType = "noop"

var lease = 30 * time.Second

func (b *bundle) enqueue(t *testing.T, typ harmonia.JobType, params any, opts *harmonia.EnqueueOpts) *harmonia.Job {
	t.Helper()
	res, err := b.store.Queue().Enqueue(b.ctx, typ, params, opts)
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	return res.Job
}

func (b *bundle) claim(t *testing.T, worker string, types ...harmonia.JobType) *harmonia.Job {
	t.Helper()
	if len(types) == 0 {
		types = []harmonia.JobType{noop}
	}
	j, err := b.store.Queue().ClaimJob(b.ctx, worker, types, lease)
	require.NoError(t, err)
	return j
}

func (b *bundle) job(t *testing.T, id bson.ObjectID) *harmonia.Job {
	t.Helper()
	j, err := b.store.Queue().GetJob(b.ctx, id)
	require.NoError(t, err)
	return j
}

func requireLeaseLost(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, harmonia.ErrLeaseLost)
	require.ErrorIs(t, err, harmonia.ErrConflict)
}

func TestEnqueueJobDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	artID := b.artifact(t, "resnet50", nil).ID
	j := b.enqueue(t, harmonia.JobValidate, harmonia.ValidateParams{ArtifactID: artID}, nil)
	require.Equal(t, harmonia.JobPending, j.Status)
	require.Equal(t, harmonia.MaxAttemptsDefault, j.MaxAttempts)
	require.Equal(t, b.clock.Now(), j.RunAfter)
	require.Zero(t, j.Attempt)
	got := b.job(t, j.ID)
	require.Equal(t, j, got)
	var p harmonia.ValidateParams
	require.NoError(t, got.DecodeParams(&p))
	require.Equal(t, artID, p.ArtifactID)

	later := b.clock.Now().Add(time.Hour)
	j = b.enqueue(t, noop, bson.D{{Key: "n", Value: 1}}, &harmonia.EnqueueOpts{Priority: 7, RunAfter: later, MaxAttempts: 5})
	require.Equal(t, 7, j.Priority)
	require.Equal(t, later, j.RunAfter)
	require.Equal(t, 5, j.MaxAttempts)
	require.Equal(t, j, b.job(t, j.ID))
}

func TestEnqueueJobRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.store.Queue().Enqueue(b.ctx, "Bad Type", nil, nil)
	requireInvalid(t, err, harmonia.EntityJob, "type")
	_, err = b.store.Queue().Enqueue(b.ctx, harmonia.JobValidate, harmonia.ValidateParams{}, nil)
	requireInvalid(t, err, harmonia.EntityJob, "params.artifact_id")
	_, err = b.store.Queue().Enqueue(b.ctx, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: bson.NewObjectID(), Source: "ftp://host/f"}, nil)
	he := requireInvalid(t, err, harmonia.EntityJob, "params.source")
	require.Contains(t, he.Reason, "use file, http, https, s3, gs, az or mem")
	_, err = b.store.Queue().Enqueue(b.ctx, noop, 42, nil)
	requireInvalid(t, err, harmonia.EntityJob, "params")
	_, err = b.store.Queue().Enqueue(b.ctx, noop, nil, &harmonia.EnqueueOpts{MaxAttempts: -1})
	requireInvalid(t, err, harmonia.EntityJob, "max_attempts")
	_, err = b.store.Queue().EnqueueMany(b.ctx, []harmonia.EnqueueParams{{Type: noop}, {Type: noop, Opts: &harmonia.EnqueueOpts{UniqueKey: "a\x00b"}}})
	he = requireInvalid(t, err, harmonia.EntityJob, "unique_key")
	require.True(t, strings.HasPrefix(he.Reason, "job 1: "), he.Reason)
	require.Zero(t, count(t, b, harmonia.CollectionJobs))
}

func TestEnqueueJobUniqueKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key := &harmonia.EnqueueOpts{UniqueKey: "validate:resnet50"}
	first := b.enqueue(t, noop, nil, key)

	again, err := b.store.Queue().Enqueue(b.ctx, noop, bson.D{{Key: "other", Value: true}}, key)
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, first.ID, again.Job.ID)

	running := b.claim(t, "w1")
	require.Equal(t, first.ID, running.ID)
	again, err = b.store.Queue().Enqueue(b.ctx, noop, nil, key)
	require.NoError(t, err)
	require.True(t, again.Duplicate, "a running job holds its key")
	require.Equal(t, harmonia.JobRunning, again.Job.Status)

	require.NoError(t, b.store.Queue().CompleteJob(b.ctx, running, nil))
	second := b.enqueue(t, noop, nil, key)
	require.NotEqual(t, first.ID, second.ID, "a finished job frees its key")

	_, err = b.store.Queue().CancelJob(b.ctx, second.ID)
	require.NoError(t, err)
	third := b.enqueue(t, noop, nil, key)
	require.NotEqual(t, second.ID, third.ID, "a cancelled job frees its key")
	require.EqualValues(t, 3, count(t, b, harmonia.CollectionJobs))
}

// TestEnqueueJobUniqueKeyConcurrent enqueues one key from many goroutines
// at once: exactly one job results, and every call returns it.
func TestEnqueueJobUniqueKeyConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const callers = 16
	ids := make([]bson.ObjectID, callers)
	dups := make([]bool, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			res, err := b.store.Queue().Enqueue(b.ctx, noop, nil, &harmonia.EnqueueOpts{UniqueKey: "k"})
			if err == nil {
				ids[i], dups[i] = res.Job.ID, res.Duplicate
			}
		})
	}
	wg.Wait()
	created := 0
	for i := range callers {
		require.Equal(t, ids[0], ids[i])
		if !dups[i] {
			created++
		}
	}
	require.Equal(t, 1, created)
	require.EqualValues(t, 1, count(t, b, harmonia.CollectionJobs))
}

// TestEnqueueManyJobsCommandCount enqueues 120 jobs, some with keys taken
// by an earlier job or by an earlier entry of the same call: the inserts
// go in batches and the taken keys are resolved with one read.
func TestEnqueueManyJobsCommandCount(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db)
	existing := b.enqueue(t, noop, nil, &harmonia.EnqueueOpts{UniqueKey: "taken"})

	params := make([]harmonia.EnqueueParams, 120)
	for i := range params {
		params[i] = harmonia.EnqueueParams{Type: noop, Params: bson.D{{Key: "i", Value: i}}}
	}
	params[3].Opts = &harmonia.EnqueueOpts{UniqueKey: "same"}
	params[97].Opts = &harmonia.EnqueueOpts{UniqueKey: "same"}
	params[110].Opts = &harmonia.EnqueueOpts{UniqueKey: "taken"}

	counter.Reset()
	res, err := b.store.Queue().EnqueueMany(b.ctx, params)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"insert": 3, "find": 1}, counter.Counts(), "120 inserts in batches of at most 50, one read")
	require.Len(t, res, 120)
	for i, r := range res {
		switch i {
		case 97:
			require.True(t, r.Duplicate)
			require.Equal(t, res[3].Job.ID, r.Job.ID)
		case 110:
			require.True(t, r.Duplicate)
			require.Equal(t, existing.ID, r.Job.ID)
		default:
			require.False(t, r.Duplicate, "job %d", i)
			require.EqualValues(t, i, r.Job.Params.Lookup("i").Int32())
		}
	}
	require.EqualValues(t, 1+118, count(t, b, harmonia.CollectionJobs))
}

func TestClaimJobOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := b.clock.Now()
	low := b.enqueue(t, noop, nil, nil)
	high := b.enqueue(t, noop, nil, &harmonia.EnqueueOpts{Priority: 10})
	early := b.enqueue(t, noop, nil, &harmonia.EnqueueOpts{RunAfter: now.Add(-time.Minute)})
	future := b.enqueue(t, noop, nil, &harmonia.EnqueueOpts{Priority: 100, RunAfter: now.Add(time.Hour)})
	low2 := b.enqueue(t, noop, nil, nil)
	other := b.enqueue(t, "other", nil, &harmonia.EnqueueOpts{Priority: 50})

	var order []bson.ObjectID
	for {
		j := b.claim(t, "w1")
		if j == nil {
			break
		}
		require.Equal(t, harmonia.JobRunning, j.Status)
		require.Equal(t, 1, j.Attempt)
		require.Equal(t, "w1", j.WorkerID)
		require.NotEmpty(t, j.LeaseToken)
		require.Equal(t, now.Add(lease), *j.LeaseExpiresAt)
		require.Equal(t, now, *j.StartedAt)
		require.Equal(t, asStored(j), b.job(t, j.ID), "the claimed job as returned is the job as stored")
		order = append(order, j.ID)
	}
	require.Equal(t, []bson.ObjectID{high.ID, early.ID, low.ID, low2.ID}, order,
		"priority first, then run-after, then age; future jobs and other types wait")

	b.clock.Advance(time.Hour)
	require.Equal(t, future.ID, b.claim(t, "w1").ID)
	require.Equal(t, other.ID, b.claim(t, "w1", noop, "other").ID)

	_, err := b.store.Queue().ClaimJob(b.ctx, "", []harmonia.JobType{noop}, lease)
	requireInvalid(t, err, harmonia.EntityJob, "worker_id")
	_, err = b.store.Queue().ClaimJob(b.ctx, "w", nil, lease)
	requireInvalid(t, err, harmonia.EntityJob, "type")
}

// TestClaimJobTakesOverExpiredLease: a job whose worker stopped
// heart-beating is claimed again once its lease expires; the first
// worker's later writes are all refused and change nothing.
func TestClaimJobTakesOverExpiredLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	j := b.enqueue(t, noop, nil, nil)
	stale := b.claim(t, "w1")
	require.Equal(t, j.ID, stale.ID)

	b.clock.Advance(lease / 2)
	require.NoError(t, b.store.Queue().Heartbeat(b.ctx, stale, lease))
	require.Equal(t, b.clock.Now().Add(lease), *stale.LeaseExpiresAt)
	require.Equal(t, stale.LeaseExpiresAt, b.job(t, j.ID).LeaseExpiresAt)
	b.clock.Advance(lease - time.Millisecond)
	require.Nil(t, b.claim(t, "w2"), "the heartbeat extended the lease")

	b.clock.Advance(2 * time.Millisecond)
	fresh := b.claim(t, "w2")
	require.NotNil(t, fresh)
	require.Equal(t, j.ID, fresh.ID)
	require.Equal(t, 2, fresh.Attempt)
	require.NotEqual(t, stale.LeaseToken, fresh.LeaseToken)
	require.Len(t, fresh.Errors, 1)
	require.Equal(t, 1, fresh.Errors[0].Attempt)
	require.Equal(t, "w1", fresh.Errors[0].WorkerID)
	require.Contains(t, fresh.Errors[0].Error, "lease expired")
	require.Equal(t, asStored(fresh), b.job(t, j.ID))

	requireLeaseLost(t, b.store.Queue().Heartbeat(b.ctx, stale, lease))
	requireLeaseLost(t, b.store.Queue().AppendLog(b.ctx, stale, harmonia.LevelInfo, "late"))
	requireLeaseLost(t, b.store.Queue().CompleteJob(b.ctx, stale, bson.D{{Key: "by", Value: "w1"}}))
	requireLeaseLost(t, b.store.Queue().FailJob(b.ctx, stale, errors.New("late")))
	requireLeaseLost(t, b.store.Queue().ReleaseJob(b.ctx, stale))
	require.Equal(t, asStored(fresh), b.job(t, j.ID), "the stale worker changed nothing")
	log, err := b.store.Queue().JobLog(b.ctx, j.ID)
	require.NoError(t, err)
	require.Empty(t, log)

	require.NoError(t, b.store.Queue().CompleteJob(b.ctx, fresh, bson.D{{Key: "by", Value: "w2"}}))
	got := b.job(t, j.ID)
	require.Equal(t, harmonia.JobSuccess, got.Status)
	require.Equal(t, "w2", got.Result.Lookup("by").StringValue())
	requireLeaseLost(t, b.store.Queue().CompleteJob(b.ctx, stale, nil))
}

func TestClaimJobFailsExpiredLastAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	j := b.enqueue(t, noop, nil, &harmonia.EnqueueOpts{MaxAttempts: 1, UniqueKey: "once"})
	require.NotNil(t, b.claim(t, "w1"))
	b.clock.Advance(lease + time.Second)
	next := b.enqueue(t, noop, nil, nil)
	require.Equal(t, next.ID, b.claim(t, "w2").ID, "the expired job, first in line, had no attempt left: the claim goes on")
	got := b.job(t, j.ID)
	require.Equal(t, harmonia.JobFailed, got.Status)
	require.Equal(t, 1, got.Attempt)
	require.Len(t, got.Errors, 1)
	require.Contains(t, got.Error, "lease expired")
	require.Empty(t, got.LeaseToken)
	require.NotNil(t, got.FinishedAt)
	b.enqueue(t, noop, nil, &harmonia.EnqueueOpts{UniqueKey: "once"})
}

func TestJobFailRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	base, maxWait := time.Minute, 3*time.Minute
	b := setupOn(t, harmoniatest.Database(t), func(o *harmonia.Options) {
		o.JobBackoffBase, o.JobBackoffMax, o.Test.Rand = base, maxWait, rand.New(rand.NewPCG(1, 2))
	})
	j := b.enqueue(t, noop, nil, &harmonia.EnqueueOpts{MaxAttempts: 4})
	waits := []time.Duration{base, 2 * base, maxWait}
	for attempt := 1; attempt <= 4; attempt++ {
		c := b.claim(t, "w1")
		require.NotNil(t, c, "attempt %d", attempt)
		require.Equal(t, attempt, c.Attempt)
		now := b.clock.Now()
		require.NoError(t, b.store.Queue().FailJob(b.ctx, c, fmt.Errorf("boom %d", attempt)))
		got := b.job(t, j.ID)
		require.Len(t, got.Errors, attempt, "every attempt's error is kept")
		require.Equal(t, fmt.Sprintf("boom %d", attempt), got.Error)
		require.Equal(t, got.Status, c.Status)
		if attempt == 4 {
			require.Equal(t, harmonia.JobFailed, got.Status)
			require.NotNil(t, got.FinishedAt)
			break
		}
		require.Equal(t, harmonia.JobPending, got.Status)
		wait := got.RunAfter.Sub(now)
		require.GreaterOrEqual(t, wait, waits[attempt-1]/2, "attempt %d", attempt)
		require.Less(t, wait, waits[attempt-1], "attempt %d", attempt)
		b.clock.Advance(wait - time.Millisecond)
		require.Nil(t, b.claim(t, "w1"), "no retry before the backoff")
		b.clock.Advance(time.Millisecond)
	}
	got := b.job(t, j.ID)
	for i, e := range got.Errors {
		require.Equal(t, i+1, e.Attempt)
		require.Equal(t, fmt.Sprintf("boom %d", i+1), e.Error)
		require.Equal(t, "w1", e.WorkerID)
	}

	p := b.enqueue(t, noop, nil, nil)
	c := b.claim(t, "w1")
	require.NoError(t, b.store.Queue().FailJob(b.ctx, c, harmonia.Permanent(errors.New("bad input"))))
	got = b.job(t, p.ID)
	require.Equal(t, harmonia.JobFailed, got.Status, "a permanent error is not retried")
	require.Equal(t, 1, got.Attempt)
	require.Equal(t, "bad input", got.Error)
}

func TestCompleteJobResult(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue(t, noop, nil, nil)
	c := b.claim(t, "w1")
	err := b.store.Queue().CompleteJob(b.ctx, c, 42)
	requireInvalid(t, err, harmonia.EntityJob, "result")
	require.Equal(t, harmonia.JobRunning, b.job(t, c.ID).Status)

	type out struct {
		Labels []string `bson:"labels"`
	}
	require.NoError(t, b.store.Queue().CompleteJob(b.ctx, c, out{Labels: []string{"cat"}}))
	got := b.job(t, c.ID)
	require.Equal(t, harmonia.JobSuccess, got.Status)
	require.Equal(t, asStored(c), got)
	var o out
	require.NoError(t, bson.Unmarshal(got.Result, &o))
	require.Equal(t, []string{"cat"}, o.Labels)
	require.Empty(t, got.LeaseToken)
	require.Nil(t, got.LeaseExpiresAt)
}

func TestCancelJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	j := b.enqueue(t, noop, nil, nil)
	cancelled, err := b.store.Queue().CancelJob(b.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, harmonia.JobCancelled, cancelled.Status)
	require.Empty(t, cancelled.Error, "a cancelled job did not fail")
	require.NotNil(t, cancelled.FinishedAt)
	require.Nil(t, b.claim(t, "w1"))
	_, err = b.store.Queue().CancelJob(b.ctx, j.ID)
	require.ErrorIs(t, err, harmonia.ErrConflict)

	b.enqueue(t, noop, nil, nil)
	running := b.claim(t, "w1")
	cancelled, err = b.store.Queue().CancelJob(b.ctx, running.ID)
	require.NoError(t, err, "a running job can be cancelled")
	require.Equal(t, harmonia.JobCancelled, cancelled.Status)
	require.Empty(t, cancelled.LeaseToken)
	require.Nil(t, cancelled.LeaseExpiresAt)
	requireLeaseLost(t, b.store.Queue().CompleteJob(b.ctx, running, nil))
	require.Equal(t, harmonia.JobCancelled, b.job(t, running.ID).Status, "the worker's late outcome is refused")
	_, err = b.store.Queue().CancelJob(b.ctx, running.ID)
	require.ErrorIs(t, err, harmonia.ErrConflict)
	require.Contains(t, err.Error(), "cancelled")

	_, err = b.store.Queue().CancelJob(b.ctx, bson.NewObjectID())
	require.ErrorIs(t, err, harmonia.ErrNotFound)
}

func TestReleaseJobKeepsAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	j := b.enqueue(t, noop, nil, nil)
	c := b.claim(t, "w1")
	require.NoError(t, b.store.Queue().ReleaseJob(b.ctx, c))
	got := b.job(t, j.ID)
	require.Equal(t, harmonia.JobPending, got.Status)
	require.Zero(t, got.Attempt)
	require.Empty(t, got.Errors)
	require.Equal(t, j.RunAfter, got.RunAfter)
	again := b.claim(t, "w2")
	require.Equal(t, 1, again.Attempt)
}

// TestJobLog appends more lines than the tail keeps: the tail has the
// last ones, the full log all of them, read with one command.
func TestJobLog(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db, func(o *harmonia.Options) { o.JobLogTail = 3 })
	j := b.enqueue(t, noop, nil, nil)
	c := b.claim(t, "w1")
	for i := range 5 {
		require.NoError(t, b.store.Queue().AppendLog(b.ctx, c, harmonia.LevelInfo, fmt.Sprintf("line %d", i)))
		b.clock.Advance(time.Second)
	}
	require.NoError(t, b.store.Queue().AppendLog(b.ctx, c, harmonia.LevelWarn, strings.Repeat("x", 2*harmonia.MaxLogMessageBytes)))
	err := b.store.Queue().AppendLog(b.ctx, c, "loud", "x")
	requireInvalid(t, err, harmonia.EntityJob, "level")

	got := b.job(t, j.ID)
	require.Len(t, got.LogTail, 3)
	require.Equal(t, "2026-11-01T12:00:03.000Z info line 3", got.LogTail[0])
	require.Equal(t, "2026-11-01T12:00:04.000Z info line 4", got.LogTail[1])
	require.True(t, strings.HasPrefix(got.LogTail[2], "2026-11-01T12:00:05.000Z warn xxx"))
	require.Equal(t, c.LogTail, got.LogTail)

	counter.Reset()
	events, err := b.store.Queue().JobLog(b.ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, 1, counter.Total(), "one query: %v", counter.Names())
	require.Len(t, events, 6)
	for i, ev := range events[:5] {
		require.Equal(t, fmt.Sprintf("line %d", i), ev.Message)
		require.Equal(t, 1, ev.Attempt)
		require.Equal(t, j.ID, ev.JobID)
	}
	require.LessOrEqual(t, len(events[5].Message), harmonia.MaxLogMessageBytes)
	require.True(t, strings.HasSuffix(events[5].Message, "…"))
}

func TestOpenChecksJobOptions(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	for field, o := range map[string]harmonia.Options{
		"job_backoff_base": {JobBackoffBase: -time.Second},
		"job_log_tail":     {JobLogTail: -1},
		"job_backoff_max":  {JobBackoffBase: time.Hour, JobBackoffMax: time.Minute},
	} {
		_, err := harmonia.Open(t.Context(), db, &o)
		requireInvalid(t, err, "store", field)
	}
}
