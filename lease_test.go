package harmonia_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/testenv"
)

// TestBatchFinishRefusesStalePerJob: FinishJobs records three outcomes in
// one update; the one whose lease another worker took over is refused
// alone (one more read tells which), and a bad result is refused before
// anything is written.
func TestBatchFinishRefusesStalePerJob(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db, func(o *harmonia.Options) { o.JobBackoffBase = time.Minute })
	testenv.EnqueueNumbered(t, b.store, noop, 4)
	jobs, err := b.store.Queue().ClaimJobs(b.ctx, "w1", []harmonia.JobType{noop}, 4, lease)
	require.NoError(t, err)
	require.Len(t, jobs, 4)
	b.clock.Advance(lease / 2)
	require.NoError(t, b.store.Queue().Heartbeat(b.ctx, jobs[0], lease))
	require.NoError(t, b.store.Queue().Heartbeat(b.ctx, jobs[2], lease))
	require.NoError(t, b.store.Queue().Heartbeat(b.ctx, jobs[3], lease))
	b.clock.Advance(lease/2 + time.Second)
	taken, err := b.store.Queue().ClaimJobs(b.ctx, "w2", []harmonia.JobType{noop}, 4, lease)
	require.NoError(t, err)
	require.Len(t, taken, 1)
	require.Equal(t, jobs[1].ID, taken[0].ID)

	counter.Reset()
	errs, err := b.store.Queue().WriteLeases(b.ctx, []*harmonia.LeaseWrite{
		{Job: jobs[0], Op: harmonia.LeaseComplete, Result: bson.D{{Key: "ok", Value: 1}}},
		{Job: jobs[1], Op: harmonia.LeaseComplete, Result: bson.D{{Key: "ok", Value: 1}}},
		{Job: jobs[2], Op: harmonia.LeaseFail, Err: errors.New("flaky")},
		{Job: jobs[3], Op: harmonia.LeaseComplete, Result: 42},
	})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	requireLeaseLost(t, errs[1])
	require.NoError(t, errs[2])
	requireInvalid(t, errs[3], harmonia.EntityJob, "result")
	require.Equal(t, map[string]int{"update": 1, "find": 1}, counter.Counts())

	require.Equal(t, harmonia.JobSuccess, jobs[0].Status)
	require.Equal(t, asStored(jobs[0]), b.job(t, jobs[0].ID))
	require.Equal(t, asStored(taken[0]), b.job(t, jobs[1].ID), "the stale outcome changed nothing")
	require.Equal(t, harmonia.JobPending, jobs[2].Status, "retried")
	require.Equal(t, asStored(jobs[2]), b.job(t, jobs[2].ID))
	require.Equal(t, harmonia.JobRunning, b.job(t, jobs[3].ID).Status)

	counter.Reset()
	errs, err = b.store.Queue().WriteLeases(b.ctx, []*harmonia.LeaseWrite{{Job: taken[0], Op: harmonia.LeaseComplete}, {Job: jobs[3], Op: harmonia.LeaseComplete}})
	require.NoError(t, err)
	require.Equal(t, []error{nil, nil}, errs)
	require.Equal(t, map[string]int{"update": 1}, counter.Counts(), "all recorded: no read")
}

func storedExpiry(t *testing.T, db *mongo.Database, id bson.ObjectID) time.Time {
	t.Helper()
	var doc struct {
		Expires time.Time `bson:"lease_expires_at"`
	}
	require.NoError(t, db.Collection(harmonia.CollectionJobs).FindOne(t.Context(), bson.D{{Key: "_id", Value: id}}).Decode(&doc))
	return doc.Expires
}

// TestLeaseServerClockIgnoresSkew: two workers whose clocks are two hours
// apart share a job. On the Stores' own clocks, the worker ahead takes
// the job from the one behind the moment it is claimed. On the server's
// clock, the lease is stored from the server's $$NOW, the worker ahead
// cannot take it while it is heart-beaten, and takes it over (through
// the batch claim) once the heartbeats stop and it expires; the stale
// finish is then refused.
func TestLeaseServerClockIgnoresSkew(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireServerClock(t)
	db := harmoniatest.Database(t)
	ctx := t.Context()
	plain, err := harmonia.Open(ctx, db, nil)
	require.NoError(t, err)
	require.Equal(t, harmonia.LeaseClockServer, plain.Queue().LeaseClock(), "the default where the server has a clock")
	const short = 2 * time.Second
	types := []harmonia.JobType{noop}
	enqueue := func(s *harmonia.Store) *harmonia.Job {
		res, err := s.Queue().Enqueue(ctx, noop, nil, nil)
		require.NoError(t, err)
		return res.Job
	}

	// The hazard: on local clocks a live lease is taken over at once.
	behindLocal, aheadLocal := testenv.SkewedStore(t, db, -time.Hour, harmonia.LeaseClockLocal), testenv.SkewedStore(t, db, time.Hour, harmonia.LeaseClockLocal)
	require.Equal(t, harmonia.LeaseClockLocal, behindLocal.Queue().LeaseClock())
	first := enqueue(behindLocal)
	held, err := behindLocal.Queue().ClaimJob(ctx, "behind", types, short)
	require.NoError(t, err)
	require.Equal(t, first.ID, held.ID)
	stolen, err := aheadLocal.Queue().ClaimJob(ctx, "ahead", types, short)
	require.NoError(t, err)
	require.NotNil(t, stolen, "on local clocks two hours apart, the live lease looks expired")
	require.Equal(t, first.ID, stolen.ID)
	require.NoError(t, aheadLocal.Queue().CompleteJob(ctx, stolen, nil))

	// On the server's clock the skew does not matter.
	behind, ahead := testenv.SkewedStore(t, db, -time.Hour, harmonia.LeaseClockServer), testenv.SkewedStore(t, db, time.Hour, harmonia.LeaseClockServer)
	job := enqueue(behind)
	// What follows holds while the lease lives: a stall of the machine
	// past half a lease (the sleep below takes the other half) skips.
	probe := harmoniatest.StartStallProbe(t)
	sent := time.Now()
	mine, err := behind.Queue().ClaimJob(ctx, "behind", types, short)
	require.NoError(t, err)
	require.Equal(t, job.ID, mine.ID)
	expires := storedExpiry(t, db, job.ID)
	require.WithinDuration(t, sent.Add(short), expires, time.Minute, "the lease is stored on the server's clock, not the claimer's (an hour behind)")

	none, err := ahead.Queue().ClaimJobs(ctx, "ahead", types, 8, short)
	require.NoError(t, err)
	probe.Require(t, len(none) == 0, short/2, "a live lease was taken over (%d jobs)", len(none))
	alone, err := ahead.Queue().ClaimJob(ctx, "ahead", types, short)
	require.NoError(t, err)
	probe.Require(t, alone == nil, short/2, "a live lease was taken over by ClaimJob")

	time.Sleep(short / 2)
	err = behind.Queue().Heartbeat(ctx, mine, short)
	probe.Require(t, err == nil, short/2, "heartbeat of a live lease: %v", err)
	renewed := storedExpiry(t, db, job.ID)
	require.Greater(t, renewed.Sub(expires), short/4, "the heartbeat moved the expiry on the server's clock")
	none, err = ahead.Queue().ClaimJobs(ctx, "ahead", types, 8, short)
	require.NoError(t, err)
	probe.Require(t, len(none) == 0, short/2, "a renewed lease was taken over (%d jobs)", len(none))
	probe.Stop()

	var taken []*harmonia.Job
	testenv.WaitWithin(t, 20*time.Second, "the lease to expire on the server's clock", func() bool {
		taken, err = ahead.Queue().ClaimJobs(ctx, "ahead", types, 8, short)
		require.NoError(t, err)
		return len(taken) > 0
	})
	if harmoniatest.CurrentLane(t).Embedded { // the server's clock is this machine's
		require.False(t, time.Now().Before(renewed), "taken over before the stored expiry")
	}
	require.Len(t, taken, 1)
	require.Equal(t, job.ID, taken[0].ID)
	require.Equal(t, 2, taken[0].Attempt)
	require.Equal(t, "ahead", taken[0].WorkerID)
	require.Len(t, taken[0].Errors, 1)
	require.Contains(t, taken[0].Errors[0].Error, "lease expired")
	requireLeaseLost(t, behind.Queue().CompleteJob(ctx, mine, nil))
	require.NoError(t, ahead.Queue().CompleteJob(ctx, taken[0], nil))
}
