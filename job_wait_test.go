package harmonia_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

func TestWaitJobsReturnsFinishedJobsInOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := harmoniatest.Store(t, nil)
	var ids []bson.ObjectID
	for i := range 3 {
		r, err := s.Queue().Enqueue(ctx, "square", bson.D{{Key: "n", Value: i + 2}}, nil)
		require.NoError(t, err)
		ids = append(ids, r.Job.ID)
	}
	// A loop of the kind a custom worker runs squares the jobs.
	loopCtx, stopLoop := context.WithCancel(ctx)
	loopDone := make(chan error, 1)
	go func() { loopDone <- squareJobs(loopCtx, s) }()
	stop := func() error {
		stopLoop()
		return <-loopDone
	}
	var progress []int
	jobs, err := s.Queue().WaitJobs(ctx, ids, &harmonia.WaitOpts{PollInterval: 10 * time.Millisecond,
		Progress: func(n, total int) { progress = append(progress, n); require.Equal(t, 3, total) }})
	require.NoError(t, stop())
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	require.Equal(t, 3, progress[len(progress)-1])
	for i, j := range jobs {
		require.Equal(t, ids[i], j.ID)
		require.Equal(t, harmonia.JobSuccess, j.Status)
		var res struct {
			Square int `bson:"square"`
		}
		require.NoError(t, j.DecodeResult(&res))
		require.Equal(t, (i+2)*(i+2), res.Square)
	}
	var wrong struct {
		Square string `bson:"square"`
	}
	require.ErrorIs(t, jobs[0].DecodeResult(&wrong), harmonia.ErrInvalid)
}

func TestWaitJobsStopsWithTheContextAndRefusesUnknownIDs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := harmoniatest.Store(t, nil)
	r, err := s.Queue().Enqueue(ctx, "nobody-runs-this", nil, nil)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = s.Queue().WaitJobs(short, []bson.ObjectID{r.Job.ID}, &harmonia.WaitOpts{PollInterval: 5 * time.Millisecond})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, harmonia.ErrInternal)

	_, err = s.Queue().WaitJobs(ctx, []bson.ObjectID{r.Job.ID, bson.NewObjectID()}, nil)
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	_, err = s.Queue().WaitJobs(ctx, nil, &harmonia.WaitOpts{PollInterval: -1})
	require.ErrorIs(t, err, harmonia.ErrInvalid)
	jobs, err := s.Queue().WaitJobs(ctx, nil, nil)
	require.NoError(t, err)
	require.Empty(t, jobs)
}

// squareJobs claims and completes "square" jobs, recording n*n, until ctx
// ends.
func squareJobs(ctx context.Context, s *harmonia.Store) error {
	for ctx.Err() == nil {
		jobs, err := s.Queue().ClaimJobs(ctx, "squarer", []harmonia.JobType{"square"}, 3, time.Minute)
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for _, j := range jobs {
			var p struct {
				N int `bson:"n"`
			}
			if err := j.DecodeParams(&p); err != nil {
				return err
			}
			if err := s.Queue().CompleteJob(ctx, j, bson.D{{Key: "square", Value: p.N * p.N}}); err != nil {
				return err
			}
		}
	}
	return nil
}
