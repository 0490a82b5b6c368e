// Package testenv holds the test helpers that the tests of several of
// harmonia's packages share (the root's and worker's): a Store on a fresh
// database with a controllable clock, numbered jobs, and polling waits.
// Helpers for users' tests are in package harmoniatest.
package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// Env is a Store opened for a test, with what opened it.
type Env struct {
	Ctx   context.Context // the test's context
	DB    *mongo.Database
	Store *harmonia.Store
	Clock *harmoniatest.Clock // the Store's clock (TestOptions.Now); leases on it too
}

// Open opens a Store on db whose clock is Env.Clock, with its leases on
// that clock, and ensures its indexes; opts adjust its Options first.
func Open(t testing.TB, db *mongo.Database, opts ...func(*harmonia.Options)) *Env {
	t.Helper()
	ctx := t.Context()
	clock := harmoniatest.NewClock()
	o := harmonia.Options{Test: &harmonia.TestOptions{Now: clock.Now}, LeaseClock: harmonia.LeaseClockLocal}
	for _, f := range opts {
		f(&o)
	}
	s, err := harmonia.Open(ctx, db, &o)
	require.NoError(t, err)
	require.NoError(t, s.EnsureIndexes(ctx))
	return &Env{Ctx: ctx, DB: db, Store: s, Clock: clock}
}

// SkewedStore opens a Store on db whose clock is off by skew, with its
// leases on clock.
func SkewedStore(t testing.TB, db *mongo.Database, skew time.Duration, clock harmonia.LeaseClock) *harmonia.Store {
	t.Helper()
	s, err := harmonia.Open(t.Context(), db, &harmonia.Options{
		Test:       &harmonia.TestOptions{Now: func() time.Time { return time.Now().Add(skew) }},
		LeaseClock: clock, EnsureIndexes: true,
	})
	require.NoError(t, err)
	return s
}

// EnqueueNumbered enqueues n jobs of typ with params {n: i}, with one
// command, and returns their ids in order.
func EnqueueNumbered(t testing.TB, store *harmonia.Store, typ harmonia.JobType, n int) []bson.ObjectID {
	t.Helper()
	params := make([]harmonia.EnqueueParams, n)
	for i := range params {
		params[i] = harmonia.EnqueueParams{Type: typ, Params: bson.D{{Key: "n", Value: i}}}
	}
	res, err := store.Queue().EnqueueMany(t.Context(), params)
	require.NoError(t, err)
	ids := make([]bson.ObjectID, n)
	for i, r := range res {
		ids[i] = r.Job.ID
	}
	return ids
}

// JobNumber returns the number EnqueueNumbered gave job.
func JobNumber(job *harmonia.Job) int { return int(job.Params.Lookup("n").Int32()) }

// AllJobs reads every job of db with one query.
func AllJobs(t testing.TB, db *mongo.Database) map[bson.ObjectID]*harmonia.Job {
	t.Helper()
	cur, err := db.Collection(harmonia.CollectionJobs).Find(t.Context(), bson.D{})
	require.NoError(t, err)
	var jobs []*harmonia.Job
	require.NoError(t, cur.All(t.Context(), &jobs))
	m := make(map[bson.ObjectID]*harmonia.Job, len(jobs))
	for _, j := range jobs {
		m[j.ID] = j
	}
	return m
}

// WaitWithin polls cond every 5 ms until it holds, failing t after d. d
// guards against a hang; it is no claim of speed, so make it generous.
func WaitWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
