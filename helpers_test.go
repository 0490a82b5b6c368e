package harmonia_test

// The root package's shared test helpers.

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

type bundle struct {
	ctx   context.Context
	db    *mongo.Database
	store *harmonia.Store
	clock *harmoniatest.Clock
}

func setup(t *testing.T) *bundle {
	t.Helper()
	return setupOn(t, harmoniatest.Database(t))
}

// setupOn opens a Store on db with the bundle's clock; opts adjust its
// Options.
func setupOn(t *testing.T, db *mongo.Database, opts ...func(*harmonia.Options)) *bundle {
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
	return &bundle{ctx: ctx, db: db, store: s, clock: clock}
}

func (b *bundle) license(t *testing.T, spdx string) *harmonia.License {
	t.Helper()
	l := &harmonia.License{SPDXID: spdx, CommercialUse: true}
	require.NoError(t, b.store.CreateLicense(b.ctx, l))
	return l
}

func (b *bundle) artifact(t *testing.T, name string, lic *harmonia.License, tags ...string) *harmonia.ModelArtifact {
	t.Helper()
	a := validArtifact()
	a.Name, a.Tags = name, tags
	if lic != nil {
		a.LicenseID = lic.ID
	}
	require.NoError(t, b.store.CreateArtifact(b.ctx, a))
	return a
}

func count(t *testing.T, b *bundle, col string) int64 {
	t.Helper()
	n, err := b.db.Collection(col).CountDocuments(b.ctx, bson.D{})
	require.NoError(t, err)
	return n
}

// failPointStore returns a bundle on harmoniatest.FailPointDatabase: a
// client of the test's own, the fail point setter and its command counter.
func failPointStore(t *testing.T) (*bundle, func(mode any, data bson.D), *harmoniatest.CommandCounter) {
	t.Helper()
	db, set, counter := harmoniatest.FailPointDatabase(t)
	return setupOn(t, db), set, counter
}

// waitWithin polls cond until it holds, failing t after d.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// enqueueNumbered enqueues n noop jobs with params {n: i}.
func enqueueNumbered(t *testing.T, b *bundle, n int) []bson.ObjectID {
	t.Helper()
	params := make([]harmonia.EnqueueParams, n)
	for i := range params {
		params[i] = harmonia.EnqueueParams{Type: noop, Params: bson.D{{Key: "n", Value: i}}}
	}
	res, err := b.store.Queue().EnqueueMany(b.ctx, params)
	require.NoError(t, err)
	ids := make([]bson.ObjectID, n)
	for i, r := range res {
		ids[i] = r.Job.ID
	}
	return ids
}
func allJobs(t *testing.T, b *bundle) map[bson.ObjectID]*harmonia.Job {
	t.Helper()
	cur, err := b.db.Collection(harmonia.CollectionJobs).Find(b.ctx, bson.D{})
	require.NoError(t, err)
	var jobs []*harmonia.Job
	require.NoError(t, cur.All(b.ctx, &jobs))
	m := make(map[bson.ObjectID]*harmonia.Job, len(jobs))
	for _, j := range jobs {
		m[j.ID] = j
	}
	return m
}
func jobNumber(job *harmonia.Job) int { return int(job.Params.Lookup("n").Int32()) }

// skewedStore opens a Store on db whose clock is off by skew, with its
// leases on clock.
func skewedStore(t *testing.T, db *mongo.Database, skew time.Duration, clock harmonia.LeaseClock) *harmonia.Store {
	t.Helper()
	s, err := harmonia.Open(t.Context(), db, &harmonia.Options{
		Test:       &harmonia.TestOptions{Now: func() time.Time { return time.Now().Add(skew) }},
		LeaseClock: clock, EnsureIndexes: true,
	})
	require.NoError(t, err)
	return s
}
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = seed
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// errCrashed is what orCrash returns for a call that crashed.
var errCrashed = errors.New("the call crashed")

// orCrash runs f in a goroutine of its own, so that a step hook may end
// it with runtime.Goexit as a crash would end the process: nothing of the
// call runs after that, no rollback either. It returns f's results, or
// errCrashed for a call that crashed.
func orCrash[T any](f func() (T, error)) (T, error) {
	var res T
	err := errCrashed
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = f()
	}()
	<-done
	return res, err
}
