package harmonia_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// listJobIDs reads every page of f (with page size limit) and returns the
// ids in order.
func listJobIDs(t *testing.T, b *bundle, f harmonia.JobFilter) []bson.ObjectID {
	t.Helper()
	var ids []bson.ObjectID
	for {
		p, err := b.store.Queue().ListJobs(b.ctx, f)
		require.NoError(t, err)
		for _, j := range p.Items {
			ids = append(ids, j.ID)
		}
		if !p.More() {
			return ids
		}
		f.After = p.Next
	}
}

func TestListJobsFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const other harmonia.JobType = "other"
	// Created one minute apart: pending, running (w1), success (w1),
	// failed (w2), cancelled, a pending one of another type with a
	// unique key, and a running one of another type (w2). A job keeps
	// the worker that claimed it last.
	var jobs []*harmonia.Job
	add := func(typ harmonia.JobType, o *harmonia.EnqueueOpts) *harmonia.Job {
		j := b.enqueue(t, typ, nil, o)
		jobs = append(jobs, j)
		b.clock.Advance(time.Minute)
		return j
	}
	pending := add(noop, &harmonia.EnqueueOpts{RunAfter: b.clock.Now().Add(time.Hour)})
	running := add(noop, nil)
	succeeded := add(noop, nil)
	failed := add(noop, &harmonia.EnqueueOpts{MaxAttempts: 1})
	cancelled := add(noop, nil)
	keyed := add(other, &harmonia.EnqueueOpts{UniqueKey: "k1", RunAfter: b.clock.Now().Add(time.Hour)})
	otherRunning := add(other, nil)

	// Claims go in id order; the pending jobs are not due yet.
	claimID := func(worker string, typ harmonia.JobType, want bson.ObjectID) *harmonia.Job {
		t.Helper()
		j := b.claim(t, worker, typ)
		require.NotNil(t, j)
		require.Equal(t, want, j.ID)
		return j
	}
	_, err := b.store.Queue().CancelJob(b.ctx, cancelled.ID)
	require.NoError(t, err)
	claimID("w1", noop, running.ID)
	require.NoError(t, b.store.Queue().CompleteJob(b.ctx, claimID("w1", noop, succeeded.ID), nil))
	require.NoError(t, b.store.Queue().FailJob(b.ctx, claimID("w2", noop, failed.ID), errors.New("boom")))
	claimID("w2", other, otherRunning.ID)

	ids := func(js ...*harmonia.Job) []bson.ObjectID {
		out := make([]bson.ObjectID, len(js))
		for i, j := range js {
			out[i] = j.ID
		}
		return out
	}
	at := func(i int) *time.Time { v := jobs[i].CreatedAt; return &v }
	for _, tc := range []struct {
		name string
		f    harmonia.JobFilter
		want []bson.ObjectID
	}{
		{"everything", harmonia.JobFilter{}, ids(jobs...)},
		{"pending", harmonia.JobFilter{Statuses: []harmonia.JobStatus{harmonia.JobPending}}, ids(pending, keyed)},
		{"final", harmonia.JobFilter{Statuses: []harmonia.JobStatus{harmonia.JobSuccess, harmonia.JobFailed, harmonia.JobCancelled}},
			ids(succeeded, failed, cancelled)},
		{"type", harmonia.JobFilter{Types: []harmonia.JobType{other}}, ids(keyed, otherRunning)},
		{"two types", harmonia.JobFilter{Types: []harmonia.JobType{other, noop}}, ids(jobs...)},
		{"worker", harmonia.JobFilter{WorkerID: "w1"}, ids(running, succeeded)},
		{"worker and status", harmonia.JobFilter{WorkerID: "w2", Statuses: []harmonia.JobStatus{harmonia.JobRunning}}, ids(otherRunning)},
		{"worker and type", harmonia.JobFilter{WorkerID: "w2", Types: []harmonia.JobType{noop}}, ids(failed)},
		{"unknown worker", harmonia.JobFilter{WorkerID: "nobody"}, nil},
		{"unique key", harmonia.JobFilter{UniqueKey: "k1"}, ids(keyed)},
		{"created from", harmonia.JobFilter{CreatedFrom: at(5)}, ids(keyed, otherRunning)},
		{"created before", harmonia.JobFilter{CreatedBefore: at(2)}, ids(pending, running)},
		{"created range", harmonia.JobFilter{CreatedFrom: at(1), CreatedBefore: at(3)}, ids(running, succeeded)},
		{"range and status", harmonia.JobFilter{CreatedFrom: at(1), Statuses: []harmonia.JobStatus{harmonia.JobPending, harmonia.JobRunning}},
			ids(running, keyed, otherRunning)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{0, 1, 2} {
				f := tc.f
				f.Limit = limit
				require.Equal(t, tc.want, listJobIDs(t, b, f), "limit %d", limit)
			}
		})
	}

	p, err := b.store.Queue().ListJobs(b.ctx, harmonia.JobFilter{WorkerID: "w1", Statuses: []harmonia.JobStatus{harmonia.JobSuccess}})
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
	require.Equal(t, b.job(t, succeeded.ID), p.Items[0], "a listed job is the job as stored")
	require.False(t, p.More())
}

func TestListJobsPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var want []bson.ObjectID
	for range 7 {
		want = append(want, b.enqueue(t, noop, nil, nil).ID)
	}
	p, err := b.store.Queue().ListJobs(b.ctx, harmonia.JobFilter{Limit: 3})
	require.NoError(t, err)
	require.Len(t, p.Items, 3)
	require.Equal(t, want[2], p.Next, "the cursor is the page's last id")
	p, err = b.store.Queue().ListJobs(b.ctx, harmonia.JobFilter{Limit: 3, After: p.Next})
	require.NoError(t, err)
	require.Equal(t, want[3:6], []bson.ObjectID{p.Items[0].ID, p.Items[1].ID, p.Items[2].ID})
	p, err = b.store.Queue().ListJobs(b.ctx, harmonia.JobFilter{Limit: 3, After: p.Next})
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
	require.Equal(t, want[6], p.Items[0].ID)
	require.False(t, p.More(), "the last page has no cursor")

	p, err = b.store.Queue().ListJobs(b.ctx, harmonia.JobFilter{Limit: 7})
	require.NoError(t, err)
	require.Len(t, p.Items, 7)
	require.False(t, p.More(), "a page that holds the rest exactly is the last")
}

func TestListJobsRefusesInvalidFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue(t, noop, nil, nil)
	now := b.clock.Now()
	later := now.Add(time.Second)
	for _, tc := range []struct {
		name  string
		f     harmonia.JobFilter
		field string
	}{
		{"unknown status", harmonia.JobFilter{Statuses: []harmonia.JobStatus{harmonia.JobPending, "done"}}, "status"},
		{"empty status", harmonia.JobFilter{Statuses: []harmonia.JobStatus{""}}, "status"},
		{"malformed type", harmonia.JobFilter{Types: []harmonia.JobType{"Not A Type"}}, "type"},
		{"empty type", harmonia.JobFilter{Types: []harmonia.JobType{""}}, "type"},
		{"reversed range", harmonia.JobFilter{CreatedFrom: &later, CreatedBefore: &now}, "created_at"},
		{"empty range", harmonia.JobFilter{CreatedFrom: &now, CreatedBefore: &now}, "created_at"},
		{"negative limit", harmonia.JobFilter{Limit: -1}, "limit"},
		{"limit too large", harmonia.JobFilter{Limit: harmonia.ListLimitMax + 1}, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := b.store.Queue().ListJobs(b.ctx, tc.f)
			require.Nil(t, p)
			requireInvalid(t, err, harmonia.EntityJob, tc.field)
		})
	}
	p, err := b.store.Queue().ListJobs(b.ctx, harmonia.JobFilter{Limit: harmonia.ListLimitMax, CreatedFrom: &now, CreatedBefore: &later})
	require.NoError(t, err)
	require.Len(t, p.Items, 1, "the largest limit and a one-second range are accepted")
}

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
		if ctx.Err() != nil {
			return nil
		}
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
				if ctx.Err() != nil {
					return nil // stopped while the write's reply was on its way
				}
				return err
			}
		}
	}
	return nil
}
