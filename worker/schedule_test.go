package worker_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/worker"
)

// jobsByKey lists every job of type typ and counts them per unique key.
func jobsByKey(t *testing.T, b *bundle, typ harmonia.JobType) map[string]int {
	t.Helper()
	out := map[string]int{}
	f := harmonia.JobFilter{Types: []harmonia.JobType{typ}}
	for {
		p, err := b.store.Queue().ListJobs(b.ctx, f)
		require.NoError(t, err)
		for _, j := range p.Items {
			out[j.UniqueKey]++
		}
		if !p.More() {
			return out
		}
		f.After = p.Next
	}
}

func newScheduler(t *testing.T, b *bundle, opts worker.SchedulerOptions) *worker.Scheduler {
	t.Helper()
	sc, err := worker.NewScheduler(b.store, &opts)
	require.NoError(t, err)
	return sc
}

// TestPeriodicFourSchedulersEnqueueEachPeriodOnce: four processes (each
// its own Store on the same database) run a scheduler for one schedule
// over eleven periods of a shared test clock; each period's job is
// enqueued exactly once. The clock moves to the next period only after
// every scheduler has checked the current one at least twice, so all
// four contend for every period.
func TestPeriodicFourSchedulersEnqueueEachPeriodOnce(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	clock := harmoniatest.NewClock()
	clock.Advance(30 * time.Second) // mid-period
	schedule := worker.Schedule{Name: "tick", Every: time.Minute, Type: noop}
	var procs []*bundle
	var scheds []*worker.Scheduler
	for range 4 {
		b := setupOn(t, db, func(o *harmonia.Options) { o.Test.Now = clock.Now })
		procs = append(procs, b)
		scheds = append(scheds, newScheduler(t, b, worker.SchedulerOptions{
			Schedules: []worker.Schedule{schedule}, PollInterval: 5 * time.Millisecond}))
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, sc := range scheds {
		wg.Go(func() { require.NoError(t, sc.Run(ctx)) })
	}
	const periods = 11
	var keys []string
	for k := range periods {
		if k > 0 {
			clock.Advance(time.Minute)
		}
		start := clock.Now().Truncate(time.Minute)
		keys = append(keys, worker.Period{Start: start}.Key("tick"))
		before := make([]int64, len(scheds))
		for i, sc := range scheds {
			before[i] = sc.Stats().Checks
		}
		waitFor(t, "every scheduler to check the period twice", func() bool {
			for i, sc := range scheds {
				if sc.Stats().Checks < before[i]+2 {
					return false
				}
			}
			return true
		})
	}
	cancel()
	wg.Wait()

	got := jobsByKey(t, procs[0], noop)
	want := map[string]int{}
	for _, k := range keys {
		want[k] = 1
	}
	require.Equal(t, want, got, "one job per period, no more, no less")
	var total worker.SchedulerStats
	for _, sc := range scheds {
		s := sc.Stats()
		total.Periods += s.Periods
		total.Jobs += s.Jobs
	}
	require.Equal(t, int64(periods), total.Periods)
	require.Equal(t, int64(periods), total.Jobs)
}

// TestPeriodicTakeOverAfterACrash: a process that crashes after
// enqueueing a period's job and before marking the period done is taken
// over once its claim expires, and the period's job is not enqueued
// again; a process whose jobs fail to be built is taken over too, and the
// period enqueued then.
func TestPeriodicTakeOverAfterACrash(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const timeout = time.Minute
	schedules := []worker.Schedule{{Name: "hourly", Every: time.Hour, Type: noop}}
	crashing := newScheduler(t, b, worker.SchedulerOptions{Schedules: schedules, ClaimTimeout: timeout})
	worker.SetSchedulerAfterEnqueue(crashing, func(string) { runtime.Goexit() })
	other := newScheduler(t, b, worker.SchedulerOptions{Schedules: schedules, ClaimTimeout: timeout})

	done := make(chan struct{})
	go func() { defer close(done); _ = crashing.Check(b.ctx) }()
	<-done
	require.Equal(t, 1, len(jobsByKey(t, b, noop)), "the crashed process enqueued the job")
	require.NoError(t, other.Check(b.ctx))
	require.Zero(t, other.Stats().Periods, "the claim has not expired yet")

	b.clock.Advance(timeout + time.Second)
	require.NoError(t, other.Check(b.ctx))
	require.Equal(t, worker.SchedulerStats{Checks: 2, Periods: 1, Jobs: 0}, other.Stats(), "taken over, nothing left to enqueue")
	require.NoError(t, other.Check(b.ctx))
	require.Equal(t, int64(1), other.Stats().Periods, "a done period is not taken again")
	var doc bson.M
	require.NoError(t, b.db.Collection(worker.CollectionSchedules).FindOne(b.ctx, bson.D{{Key: "_id", Value: "hourly"}}).Decode(&doc))
	require.Equal(t, other.ID(), doc["owner"], "the period is recorded as taken over")
	require.Equal(t, true, doc["done"])
	require.Contains(t, doc, "created_at")
	require.Contains(t, doc, "schema_version")
	require.Equal(t, map[string]int{worker.Period{Start: b.clock.Now().Truncate(time.Hour)}.Key("hourly"): 1}, jobsByKey(t, b, noop))

	// Jobs that cannot be built: the period waits for the claim to expire.
	fail := true
	flaky := worker.Schedule{Name: "flaky", Every: time.Hour, Jobs: func(ctx context.Context, s *harmonia.Store, p worker.Period) ([]harmonia.EnqueueParams, error) {
		if fail {
			return nil, errors.New("inventory unavailable")
		}
		return []harmonia.EnqueueParams{{Type: "idle", Opts: &harmonia.EnqueueOpts{UniqueKey: "only"}}}, nil
	}}
	first := newScheduler(t, b, worker.SchedulerOptions{Schedules: []worker.Schedule{flaky}, ClaimTimeout: timeout})
	second := newScheduler(t, b, worker.SchedulerOptions{Schedules: []worker.Schedule{flaky}, ClaimTimeout: timeout})
	require.ErrorContains(t, first.Check(b.ctx), "inventory unavailable")
	fail = false
	require.NoError(t, second.Check(b.ctx))
	require.Empty(t, jobsByKey(t, b, "idle"), "the failed claim holds until it expires")
	b.clock.Advance(timeout + time.Second)
	require.NoError(t, second.Check(b.ctx))
	start := b.clock.Now().Truncate(time.Hour)
	require.Equal(t, map[string]int{worker.Period{Start: start}.Key("flaky") + ":only": 1}, jobsByKey(t, b, "idle"))
}

// TestPeriodicCronPeriods: cron schedules enqueue the latest activation
// that has started, in UTC, and skip missed ones.
func TestPeriodicCronPeriods(t *testing.T) {
	t.Parallel()
	b := setup(t) // the clock starts at 2026-11-01 12:00 UTC
	b.clock.Advance(3 * time.Minute)
	sc := newScheduler(t, b, worker.SchedulerOptions{Schedules: []worker.Schedule{
		{Name: "five", Cron: "*/5 * * * *", Type: noop},
		{Name: "yearly", Cron: "0 3 1 1 *", Type: noop},
		{Name: "paris", Cron: "CRON_TZ=Europe/Paris 0 9 * * *", Type: noop},
	}})
	require.NoError(t, sc.Check(b.ctx))
	b.clock.Advance(4 * time.Minute) // 12:07
	require.NoError(t, sc.Check(b.ctx))
	b.clock.Advance(20 * time.Minute) // 12:27: 12:10 to 12:20 were missed
	require.NoError(t, sc.Check(b.ctx))
	require.NoError(t, sc.Check(b.ctx))
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	var want []string
	for _, k := range []struct{ name, start string }{
		{"five", "2026-11-01T12:00:00Z"}, {"five", "2026-11-01T12:05:00Z"}, {"five", "2026-11-01T12:25:00Z"},
		{"yearly", "2026-01-01T03:00:00Z"},
		{"paris", "2026-11-01T08:00:00Z"}, // 09:00 in Paris, UTC+1 in November
	} {
		want = append(want, worker.Period{Start: at(k.start)}.Key(k.name))
	}
	var got []string
	for k, n := range jobsByKey(t, b, noop) {
		require.Equal(t, 1, n, k)
		got = append(got, k)
	}
	sort.Strings(want)
	sort.Strings(got)
	require.Equal(t, want, got)
}

func TestPeriodicAuditSpreadsValidations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var arts []bson.ObjectID
	for i := range 4 {
		arts = append(arts, b.artifact(t, fmt.Sprintf("model-%d", i)).ID)
	}
	_, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v1", ArtifactIDs: arts[:3], PublishedBy: "x"})
	require.NoError(t, err)
	const window = 30 * time.Minute
	sc := newScheduler(t, b, worker.SchedulerOptions{Schedules: []worker.Schedule{
		worker.AuditSchedule(&worker.AuditOptions{Every: time.Hour, Window: window})}})
	now := b.clock.Now()
	require.NoError(t, sc.Check(b.ctx))
	require.NoError(t, sc.Check(b.ctx))

	p, err := b.store.Queue().ListJobs(b.ctx, harmonia.JobFilter{Types: []harmonia.JobType{harmonia.JobValidate}})
	require.NoError(t, err)
	require.Len(t, p.Items, 3, "one validation per published artifact, once per period")
	var audited []bson.ObjectID
	var runAfter []time.Time
	for _, j := range p.Items {
		var vp harmonia.ValidateParams
		require.NoError(t, j.DecodeParams(&vp))
		audited = append(audited, vp.ArtifactID)
		runAfter = append(runAfter, j.RunAfter)
		require.Equal(t, worker.Period{Start: now.Truncate(time.Hour)}.Key(worker.AuditScheduleName)+":"+vp.ArtifactID.Hex(), j.UniqueKey)
	}
	require.ElementsMatch(t, arts[:3], audited, "the unpublished artifact is not audited")
	sort.Slice(runAfter, func(i, j int) bool { return runAfter[i].Before(runAfter[j]) })
	require.Equal(t, []time.Time{now, now.Add(window / 3), now.Add(2 * window / 3)}, runAfter, "spread evenly over the window")

	b.clock.Advance(time.Hour)
	require.NoError(t, sc.Check(b.ctx))
	p, err = b.store.Queue().ListJobs(b.ctx, harmonia.JobFilter{Types: []harmonia.JobType{harmonia.JobValidate}})
	require.NoError(t, err)
	require.Len(t, p.Items, 6, "the next period audits again")
	require.Equal(t, worker.SchedulerStats{Checks: 3, Periods: 2, Jobs: 6}, sc.Stats())
}

func TestPeriodicRefusesBadSchedules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ok := worker.Schedule{Name: "ok", Every: time.Minute, Type: noop}
	for _, tc := range []struct {
		name  string
		opts  *worker.SchedulerOptions
		field string
	}{
		{"nil", nil, "schedules"},
		{"none", &worker.SchedulerOptions{}, "schedules"},
		{"bad name", &worker.SchedulerOptions{Schedules: []worker.Schedule{{Name: "Bad Name", Every: time.Minute, Type: noop}}}, "name"},
		{"twice", &worker.SchedulerOptions{Schedules: []worker.Schedule{ok, ok}}, "name"},
		{"no type", &worker.SchedulerOptions{Schedules: []worker.Schedule{{Name: "x", Every: time.Minute}}}, "type"},
		{"no period", &worker.SchedulerOptions{Schedules: []worker.Schedule{{Name: "x", Type: noop}}}, "every"},
		{"both", &worker.SchedulerOptions{Schedules: []worker.Schedule{{Name: "x", Every: time.Minute, Cron: "@daily", Type: noop}}}, "every"},
		{"negative", &worker.SchedulerOptions{Schedules: []worker.Schedule{{Name: "x", Every: -time.Minute, Type: noop}}}, "every"},
		{"bad cron", &worker.SchedulerOptions{Schedules: []worker.Schedule{{Name: "x", Cron: "61 * * * *", Type: noop}}}, "cron"},
		{"@every", &worker.SchedulerOptions{Schedules: []worker.Schedule{{Name: "x", Cron: "@every 1h", Type: noop}}}, "cron"},
		{"negative poll", &worker.SchedulerOptions{Schedules: []worker.Schedule{ok}, PollInterval: -1}, "poll_interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := worker.NewScheduler(b.store, tc.opts)
			requireInvalid(t, err, worker.EntitySchedule, tc.field)
		})
	}
	_, err := worker.NewScheduler(nil, &worker.SchedulerOptions{Schedules: []worker.Schedule{ok}})
	requireInvalid(t, err, worker.EntitySchedule, "store")

	keyless := worker.Schedule{Name: "keyless", Every: time.Minute, Jobs: func(context.Context, *harmonia.Store, worker.Period) ([]harmonia.EnqueueParams, error) {
		return []harmonia.EnqueueParams{{Type: noop}}, nil
	}}
	sc := newScheduler(t, b, worker.SchedulerOptions{Schedules: []worker.Schedule{keyless}})
	requireInvalid(t, sc.Check(b.ctx), worker.EntitySchedule, "jobs")
	require.Empty(t, jobsByKey(t, b, noop))

	sc = newScheduler(t, b, worker.SchedulerOptions{Schedules: []worker.Schedule{ok}})
	ctx, cancel := context.WithCancel(b.ctx)
	running := make(chan error, 1)
	go func() { running <- sc.Run(ctx) }()
	waitFor(t, "the first check", func() bool { return sc.Stats().Checks > 0 })
	require.ErrorIs(t, sc.Run(ctx), harmonia.ErrConflict, "a scheduler runs once at a time")
	cancel()
	require.NoError(t, <-running)
}
