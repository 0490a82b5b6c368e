package harmonia_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

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
	behindLocal, aheadLocal := skewedStore(t, db, -time.Hour, harmonia.LeaseClockLocal), skewedStore(t, db, time.Hour, harmonia.LeaseClockLocal)
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
	behind, ahead := skewedStore(t, db, -time.Hour, harmonia.LeaseClockServer), skewedStore(t, db, time.Hour, harmonia.LeaseClockServer)
	job := enqueue(behind)
	sent := time.Now()
	mine, err := behind.Queue().ClaimJob(ctx, "behind", types, short)
	require.NoError(t, err)
	require.Equal(t, job.ID, mine.ID)
	expires := storedExpiry(t, db, job.ID)
	require.WithinDuration(t, sent.Add(short), expires, time.Minute, "the lease is stored on the server's clock, not the claimer's (an hour behind)")

	none, err := ahead.Queue().ClaimJobs(ctx, "ahead", types, 8, short)
	require.NoError(t, err)
	require.Empty(t, none, "a live lease is not taken over, whatever the claimer's clock says")
	alone, err := ahead.Queue().ClaimJob(ctx, "ahead", types, short)
	require.NoError(t, err)
	require.Nil(t, alone)

	time.Sleep(short / 2)
	require.NoError(t, behind.Queue().Heartbeat(ctx, mine, short))
	renewed := storedExpiry(t, db, job.ID)
	require.Greater(t, renewed.Sub(expires), short/4, "the heartbeat moved the expiry on the server's clock")
	none, err = ahead.Queue().ClaimJobs(ctx, "ahead", types, 8, short)
	require.NoError(t, err)
	require.Empty(t, none)

	var taken []*harmonia.Job
	waitWithin(t, 20*time.Second, "the lease to expire on the server's clock", func() bool {
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
