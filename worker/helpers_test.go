package worker_test

// The worker package's shared test helpers.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/testenv"
	"github.com/harmonia-ml/harmonia/worker"
)

// waitFor polls cond until it holds, failing t after a minute and a half.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitWithin(t, 90*time.Second, what, cond)
}

// startWorker runs a worker until the returned stop is called (or the
// test ends); stop returns when Run has, and reports Run's error.
func startWorker(t *testing.T, b *bundle, cfg worker.Options) (*worker.Worker, func()) {
	t.Helper()
	if cfg.ClaimPool == nil {
		cfg.ClaimPool = b.pool
	}
	w, stop := runWorker(t, b.ctx, b.store, cfg)
	report := func() {
		if err := stop(); err != nil {
			t.Errorf("worker %s: %v", w.ID(), err)
		}
	}
	t.Cleanup(report)
	return w, report
}

// runWorker runs a worker on store until the returned stop is called (or
// the test ends); stop returns Run's error once Run has returned.
func runWorker(t *testing.T, ctx context.Context, store *harmonia.Store, cfg worker.Options) (*worker.Worker, func() error) {
	t.Helper()
	w, err := worker.New(store, &cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { _ = stop() })
	return w, stop
}

func handlers(h worker.Handler) map[harmonia.JobType]worker.Handler {
	return map[harmonia.JobType]worker.Handler{noop: h}
}

func countJobs(t *testing.T, b *bundle, filter bson.D) int64 {
	t.Helper()
	n, err := b.db.Collection(harmonia.CollectionJobs).CountDocuments(b.ctx, filter)
	require.NoError(t, err)
	return n
}

func statusIs(s harmonia.JobStatus) bson.D { return bson.D{{Key: "status", Value: s}} }

func sumStats(ws []*worker.Worker) worker.Stats {
	var s worker.Stats
	for _, w := range ws {
		x := w.Stats()
		s.Claimed += x.Claimed
		s.Succeeded += x.Succeeded
		s.Failed += x.Failed
		s.Released += x.Released
		s.LeaseLost += x.LeaseLost
		s.Panics += x.Panics
	}
	return s
}

type bundle struct {
	ctx   context.Context
	db    *mongo.Database
	store *harmonia.Store
	clock *harmoniatest.Clock
	// pool is the claim pool the bundle's workers share, as the workers
	// of one process should.
	pool *harmonia.ClaimPool
}

// setup opens a Store on a fresh database with the bundle's clock.
func setup(t *testing.T) *bundle {
	t.Helper()
	return setupOn(t, harmoniatest.Database(t))
}

// setupOn opens a Store on db with the bundle's clock; opts adjust its
// Options.
func setupOn(t *testing.T, db *mongo.Database, opts ...func(*harmonia.Options)) *bundle {
	t.Helper()
	e := testenv.Open(t, db, opts...)
	return &bundle{ctx: e.Ctx, db: e.DB, store: e.Store, clock: e.Clock, pool: harmonia.NewClaimPool(e.Store)}
}

// artifact creates a valid artifact named name, with a license.
func (b *bundle) artifact(t *testing.T, name string) *harmonia.ModelArtifact {
	t.Helper()
	l := &harmonia.License{SPDXID: "MIT", CommercialUse: true}
	if _, err := b.store.GetOrCreateLicense(b.ctx, l); err != nil {
		require.NoError(t, err)
	}
	a := &harmonia.ModelArtifact{Name: name, Version: "1.0.0", Path: "models/" + name + ".bin",
		SizeBytes: 1, Hashes: harmonia.Hashes{SHA256: strings.Repeat("a", 64)}, LicenseID: l.ID}
	require.NoError(t, b.store.CreateArtifact(b.ctx, a))
	return a
}

// noop is the job type of the tests' jobs.
const noop harmonia.JobType = "noop"

func (b *bundle) enqueue(t *testing.T, typ harmonia.JobType, params any, opts *harmonia.EnqueueOpts) *harmonia.Job {
	t.Helper()
	res, err := b.store.Queue().Enqueue(b.ctx, typ, params, opts)
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	return res.Job
}

func (b *bundle) job(t *testing.T, id bson.ObjectID) *harmonia.Job {
	t.Helper()
	j, err := b.store.Queue().GetJob(b.ctx, id)
	require.NoError(t, err)
	return j
}

// requireInvalid requires err to be a CodeInvalid *harmonia.Error about
// field of entity, and returns it.
func requireInvalid(t *testing.T, err error, entity, field string) *harmonia.Error {
	t.Helper()
	require.ErrorIs(t, err, harmonia.ErrInvalid)
	var he *harmonia.Error
	require.ErrorAs(t, err, &he)
	require.Equal(t, entity, he.Entity)
	require.Equal(t, field, he.Field, "error: %v", err)
	require.NotEmpty(t, he.Reason)
	return he
}

// failPointStore returns a bundle on harmoniatest.FailPointDatabase: a
// client of the test's own, the fail point setter and its command counter.
func failPointStore(t *testing.T) (*bundle, func(mode any, data bson.D), *harmoniatest.CommandCounter) {
	t.Helper()
	db, set, counter := harmoniatest.FailPointDatabase(t)
	return setupOn(t, db), set, counter
}

// lease is the lease of the tests' claims.
const lease = 30 * time.Second

// claim claims one noop job (or one of types) for workerID, or returns nil.
func (b *bundle) claim(t *testing.T, workerID string, types ...harmonia.JobType) *harmonia.Job {
	t.Helper()
	if len(types) == 0 {
		types = []harmonia.JobType{noop}
	}
	jobs, err := b.store.Queue().ClaimJobs(b.ctx, workerID, types, 1, lease)
	require.NoError(t, err)
	if len(jobs) == 0 {
		return nil
	}
	return jobs[0]
}
