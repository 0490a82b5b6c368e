package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/migrate"
)

func TestMain(m *testing.M) { harmoniatest.Main(m) }

// marker is a migration that counts its runs in the collection "runs",
// one document per version, with $inc: a second run shows as 2.
func marker(version int64, name string) migrate.Migration {
	return migrate.Migration{Version: version, Name: name,
		Up: func(ctx context.Context, db *mongo.Database) error {
			return incRuns(ctx, db, version, 1)
		},
		Down: func(ctx context.Context, db *mongo.Database) error {
			return incRuns(ctx, db, version, -1)
		},
	}
}

func incRuns(ctx context.Context, db *mongo.Database, version int64, n int) error {
	_, err := db.Collection("runs").UpdateOne(ctx, bson.D{{Key: "_id", Value: version}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: n}}}}, options.UpdateOne().SetUpsert(true))
	return err
}

// runs returns how often each version's marker ran, net of reverts.
func runs(t *testing.T, db *mongo.Database) map[int64]int {
	t.Helper()
	cur, err := db.Collection("runs").Find(t.Context(), bson.D{})
	require.NoError(t, err)
	var docs []struct {
		ID int64 `bson:"_id"`
		N  int   `bson:"n"`
	}
	require.NoError(t, cur.All(t.Context(), &docs))
	out := map[int64]int{}
	for _, d := range docs {
		if d.N != 0 {
			out[d.ID] = d.N
		}
	}
	return out
}

func newRunner(t *testing.T, db *mongo.Database, ms []migrate.Migration, opts *migrate.Options) *migrate.Runner {
	t.Helper()
	r, err := migrate.New(db, ms, opts)
	require.NoError(t, err)
	return r
}

func versions(steps []migrate.Step) []int64 {
	out := []int64{}
	for _, s := range steps {
		out = append(out, s.Version)
	}
	return out
}

func requireCode(t *testing.T, err error, code harmonia.Code, contains string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, harmonia.ErrorCode(err), "%v", err)
	require.Contains(t, err.Error(), contains)
}

func TestNewRefusesBadLists(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	up := func(context.Context, *mongo.Database) error { return nil }
	cases := map[string]struct {
		ms   []migrate.Migration
		opts *migrate.Options
		want string
	}{
		"duplicate": {ms: []migrate.Migration{{Version: 1, Name: "a", Up: up}, {Version: 1, Name: "b", Up: up}}, want: "version 1 appears twice"},
		"unordered": {ms: []migrate.Migration{{Version: 2, Name: "a", Up: up}, {Version: 1, Name: "b", Up: up}}, want: "comes after version 2"},
		"zero":      {ms: []migrate.Migration{{Version: 0, Name: "a", Up: up}}, want: "must be positive"},
		"no name":   {ms: []migrate.Migration{{Version: 1, Up: up}}, want: "has no name"},
		"no up":     {ms: []migrate.Migration{{Version: 1, Name: "a"}}, want: "has no Up function"},
		"lease":     {ms: nil, opts: &migrate.Options{LockLease: time.Millisecond}, want: "at least one second"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := migrate.New(db, c.ms, c.opts)
			requireCode(t, err, harmonia.CodeInvalid, c.want)
		})
	}
	_, err := migrate.New(nil, nil, nil)
	requireCode(t, err, harmonia.CodeInvalid, "db")
}

func TestUpAppliesInOrderOnceAndRecords(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	clock := harmoniatest.NewClock()
	ms := []migrate.Migration{marker(1, "one"), marker(2, "two"), marker(5, "five")}
	r := newRunner(t, db, ms, &migrate.Options{Now: clock.Now, Owner: "test"})

	dry, err := r.Up(ctx, &migrate.UpOpts{DryRun: true, To: 2})
	require.NoError(t, err)
	require.True(t, dry.DryRun)
	require.Equal(t, []int64{1, 2}, versions(dry.Planned))
	require.Empty(t, runs(t, db), "a dry run runs nothing")
	n, err := db.Collection(harmonia.CollectionMigrations).CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.Zero(t, n, "a dry run records nothing")

	rep, err := r.Up(ctx, &migrate.UpOpts{To: 2})
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2}, versions(rep.Applied))
	require.EqualValues(t, 2, rep.Current)

	rep, err = r.Up(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{5}, versions(rep.Applied))
	require.EqualValues(t, 5, rep.Current)

	rep, err = r.Up(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, rep.Applied)
	require.Equal(t, map[int64]int{1: 1, 2: 1, 5: 1}, runs(t, db))

	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, st.Current)
	require.Zero(t, st.Pending)
	require.Nil(t, st.Lock, "the lock is released")
	require.Len(t, st.Migrations, 3)
	for _, m := range st.Migrations {
		require.Equal(t, migrate.StateApplied, m.State)
		require.Equal(t, "test", m.Owner)
		require.Equal(t, clock.Now(), m.AppliedAt)
		require.False(t, m.ChecksumMismatch)
	}

	_, err = r.Up(ctx, &migrate.UpOpts{To: 3})
	requireCode(t, err, harmonia.CodeInvalid, "no migration with version 3")

	// A record of a version this runner does not know is listed, not run.
	other := newRunner(t, db, []migrate.Migration{marker(1, "one")}, nil)
	st, err = other.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Migrations, 3)
	require.False(t, st.Migrations[2].Known)
	require.EqualValues(t, 5, st.Migrations[2].Version)
}

func TestFailedMigrationBlocksUntilResolved(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	broken := true
	ms := []migrate.Migration{marker(1, "one"), {Version: 2, Name: "two",
		Up: func(ctx context.Context, db *mongo.Database) error {
			if broken {
				return errors.New("disk on fire")
			}
			return incRuns(ctx, db, 2, 1)
		}}, marker(3, "three")}
	r := newRunner(t, db, ms, nil)

	rep, err := r.Up(ctx, nil)
	requireCode(t, err, harmonia.CodeInternal, "disk on fire")
	require.Equal(t, []int64{1}, versions(rep.Applied))
	require.NotNil(t, rep.Failed)
	require.EqualValues(t, 2, rep.Failed.Version)
	require.Equal(t, map[int64]int{1: 1}, runs(t, db), "nothing after the failure runs")

	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, migrate.StateFailed, st.Migrations[1].State)
	require.Equal(t, "disk on fire", st.Migrations[1].Error)
	require.Equal(t, 1, st.Failed)

	for _, dry := range []bool{true, false} {
		_, err = r.Up(ctx, &migrate.UpOpts{DryRun: dry})
		requireCode(t, err, harmonia.CodeConflict, "call Runner.Resolve(ctx, 2, nil)")
	}
	_, err = r.Down(ctx)
	requireCode(t, err, harmonia.CodeConflict, "failed")
	require.Equal(t, map[int64]int{1: 1}, runs(t, db))

	requireCode(t, r.Resolve(ctx, 1, nil), harmonia.CodeInvalid, "nothing to resolve")
	requireCode(t, r.Resolve(ctx, 7, nil), harmonia.CodeNotFound, "no record")

	broken = false
	require.NoError(t, r.Resolve(ctx, 2, nil))
	rep, err = r.Up(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{2, 3}, versions(rep.Applied))
	st, err = r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Migrations[1].Attempts, "Resolve cleared the record: a fresh start")
	require.Equal(t, map[int64]int{1: 1, 2: 1, 3: 1}, runs(t, db))
}

func TestResolveMarkApplied(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	ms := []migrate.Migration{{Version: 1, Name: "fails",
		Up: func(context.Context, *mongo.Database) error { panic("boom") }}, marker(2, "two")}
	r := newRunner(t, db, ms, nil)
	_, err := r.Up(ctx, nil)
	requireCode(t, err, harmonia.CodeInternal, "panic: boom")

	require.NoError(t, r.Resolve(ctx, 1, &migrate.ResolveOpts{MarkApplied: true}))
	rep, err := r.Up(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{2}, versions(rep.Applied), "a migration resolved as applied does not run")
	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, migrate.StateApplied, st.Migrations[0].State)
	require.Contains(t, st.Migrations[0].Error, "panic: boom")
}

func TestDownRevertsOneStep(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	noDown := marker(3, "three")
	noDown.Down = nil
	r := newRunner(t, db, []migrate.Migration{marker(1, "one"), marker(2, "two"), noDown}, nil)
	_, err := r.Up(ctx, &migrate.UpOpts{To: 2})
	require.NoError(t, err)

	rep, err := r.Down(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{2}, versions(rep.Reverted))
	require.EqualValues(t, 1, rep.Current)
	require.Equal(t, map[int64]int{1: 1}, runs(t, db))

	rep, err = r.Up(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{2, 3}, versions(rep.Applied))
	_, err = r.Down(ctx)
	requireCode(t, err, harmonia.CodeInvalid, "migration 3 (three) has no Down")

	clean := newRunner(t, harmoniatest.Database(t), []migrate.Migration{marker(1, "one")}, nil)
	rep, err = clean.Down(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Reverted, "nothing applied, nothing reverted")
}

func TestRenamedMigrationIsRefused(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	_, err := newRunner(t, db, []migrate.Migration{marker(1, "one")}, nil).Up(ctx, nil)
	require.NoError(t, err)
	r := newRunner(t, db, []migrate.Migration{marker(1, "uno"), marker(2, "two")}, nil)
	_, err = r.Up(ctx, nil)
	requireCode(t, err, harmonia.CodeConflict, `recorded as "one" but this program calls it "uno"`)
	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.True(t, st.Migrations[0].ChecksumMismatch)
	require.Equal(t, map[int64]int{1: 1}, runs(t, db))
}

// Four runners started at once: each migration runs exactly once, and all
// runners end with the same status.
func TestConcurrentRunnersApplyEachMigrationOnce(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	ms := append(migrate.Builtin(), marker(10, "ten"), marker(11, "eleven"), marker(12, "twelve"))
	const runners = 4
	reports := make([]*migrate.Report, runners)
	errs := make([]error, runners)
	rs := make([]*migrate.Runner, runners)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range runners {
		rs[i] = newRunner(t, db, ms, &migrate.Options{Owner: fmt.Sprintf("runner-%d", i), LockPoll: 10 * time.Millisecond})
		wg.Go(func() {
			<-start
			reports[i], errs[i] = rs[i].Up(ctx, nil)
		})
	}
	close(start)
	wg.Wait()
	applied := map[int64]int{}
	for i := range runners {
		require.NoError(t, errs[i], "runner %d", i)
		for _, s := range reports[i].Applied {
			applied[s.Version]++
		}
		require.EqualValues(t, 12, reports[i].Current)
	}
	require.Equal(t, map[int64]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 10: 1, 11: 1, 12: 1}, applied)
	require.Equal(t, map[int64]int{10: 1, 11: 1, 12: 1}, runs(t, db))
	var first *migrate.Status
	for i := range runners {
		st, err := rs[i].Status(ctx)
		require.NoError(t, err)
		require.Zero(t, st.Pending)
		require.Nil(t, st.Lock)
		if first == nil {
			first = st
		}
		require.Equal(t, first, st, "runner %d sees another status", i)
	}
}

func TestLockWaitsForHolderAndTakesOverWhenExpired(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	clock := harmoniatest.NewClock()
	_, err := db.Collection(migrate.LockCollection).InsertOne(ctx, bson.D{{Key: "_id", Value: migrate.LockID},
		{Key: "owner", Value: "ghost"}, {Key: "token", Value: "t"}, {Key: "acquired_at", Value: clock.Now()},
		{Key: "expires_at", Value: clock.Now().Add(time.Minute)}})
	require.NoError(t, err)
	r := newRunner(t, db, []migrate.Migration{marker(1, "one")},
		&migrate.Options{Now: clock.Now, LockWait: 50 * time.Millisecond, LockPoll: 10 * time.Millisecond})

	_, err = r.Up(ctx, nil)
	requireCode(t, err, harmonia.CodeConflict, "held by ghost until 2026-11-01T12:01:00Z")
	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, &migrate.LockStatus{Owner: "ghost", AcquiredAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)}, st.Lock)
	require.Empty(t, runs(t, db))

	clock.Advance(time.Minute)
	rep, err := r.Up(ctx, nil)
	require.NoError(t, err, "an expired lock is taken over")
	require.Equal(t, []int64{1}, versions(rep.Applied))
	st, err = r.Status(ctx)
	require.NoError(t, err)
	require.Nil(t, st.Lock)
}

func TestLockIsRenewedWhileAMigrationRuns(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	const lease = time.Second
	started := make(chan struct{})
	slow := migrate.Migration{Version: 1, Name: "slow", Up: func(ctx context.Context, _ *mongo.Database) error {
		close(started)
		select {
		case <-time.After(lease + lease/2):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	a := newRunner(t, db, []migrate.Migration{slow}, &migrate.Options{Owner: "a", LockLease: lease})
	b := newRunner(t, db, []migrate.Migration{slow}, &migrate.Options{Owner: "b", LockLease: lease, LockWait: time.Millisecond})
	// b tries while a's migration has lease/2-lease/5 left to run: a stall
	// of the machine past that margin skips (harmoniatest.StallProbe).
	probe := harmoniatest.StartStallProbe(t)
	done := make(chan error, 1)
	go func() {
		_, err := a.Up(ctx, nil)
		done <- err
	}()
	<-started
	time.Sleep(lease + lease/5)
	_, err := b.Up(ctx, nil)
	probe.Require(t, errors.Is(err, harmonia.ErrConflict), lease/2-lease/5, "b took the lock a renews: %v", err)
	requireCode(t, err, harmonia.CodeConflict, "held by a")
	require.NoError(t, <-done)
}

// insertV1 inserts n documents into col of schema_version 1 with tags that
// break version 2's rule, directly (as an old program wrote them).
func insertV1(t *testing.T, db *mongo.Database, col string, n int) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "schema_version", Value: 1},
			{Key: "name", Value: fmt.Sprintf("m%03d", i)}, {Key: "version", Value: "1"}, {Key: "path", Value: "models/m.onnx"},
			{Key: "tags", Value: bson.A{"Vision", " vision", "ONNX", ""}}}
	}
	_, err := db.Collection(col).InsertMany(t.Context(), docs)
	require.NoError(t, err)
}

// schemaVersions counts the documents of col by schema_version, checking
// that every version 2 document has normalised tags.
func schemaVersions(t *testing.T, db *mongo.Database, col string) map[int]int {
	t.Helper()
	cur, err := db.Collection(col).Find(t.Context(), bson.D{})
	require.NoError(t, err)
	var docs []struct {
		SchemaVersion int      `bson:"schema_version"`
		Tags          []string `bson:"tags"`
	}
	require.NoError(t, cur.All(t.Context(), &docs))
	out := map[int]int{}
	for _, d := range docs {
		out[d.SchemaVersion]++
		if d.SchemaVersion == 2 {
			require.Equal(t, []string{"vision", "onnx"}, d.Tags)
		}
	}
	return out
}

func TestBuiltinTagsTransform(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	insertV1(t, db, harmonia.CollectionArtifacts, 7)
	insertV1(t, db, harmonia.CollectionDatasets, 3)
	_, err := db.Collection(harmonia.CollectionArtifacts).InsertMany(ctx, []any{
		bson.D{{Key: "name", Value: "legacy"}, {Key: "version", Value: "0"}, {Key: "tags", Value: bson.A{"A", "a"}}},
		bson.D{{Key: "name", Value: "current"}, {Key: "version", Value: "0"}, {Key: "schema_version", Value: 2}, {Key: "tags", Value: bson.A{"vision", "onnx"}}},
	})
	require.NoError(t, err)

	r := newRunner(t, db, migrate.Builtin(), nil)
	rep, err := r.Up(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6}, versions(rep.Applied))
	require.Equal(t, map[string]int64{
		"model_artifacts_scanned": 8, "model_artifacts_changed": 8, "datasets_scanned": 3, "datasets_changed": 3,
	}, rep.Applied[1].Counts)
	var legacy struct {
		SchemaVersion int      `bson:"schema_version"`
		Tags          []string `bson:"tags"`
	}
	require.NoError(t, db.Collection(harmonia.CollectionArtifacts).FindOne(ctx, bson.D{{Key: "name", Value: "legacy"}}).Decode(&legacy))
	require.Equal(t, 2, legacy.SchemaVersion, "a document without schema_version is version 1")
	require.Equal(t, []string{"a"}, legacy.Tags)
	_, err = db.Collection(harmonia.CollectionArtifacts).DeleteOne(ctx, bson.D{{Key: "name", Value: "legacy"}})
	require.NoError(t, err)
	require.Equal(t, map[int]int{2: 8}, schemaVersions(t, db, harmonia.CollectionArtifacts))
	require.Equal(t, map[int]int{2: 3}, schemaVersions(t, db, harmonia.CollectionDatasets))

	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, rep.Applied[1].Counts, st.Migrations[1].Counts, "counts are recorded")

	specs, err := db.Collection(harmonia.CollectionArtifacts).Indexes().ListSpecifications(ctx)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	require.True(t, names["uniq_name_key_version"], "migration 1 created harmonia's indexes: %v", names)
	require.False(t, names["uniq_name_version"], "the former index is gone: %v", names)
}

// Migration 3 gives the jobs CancelJob stored as failed the cancelled
// status, and leaves jobs that failed in their handlers alone.
func TestBuiltinCancelledJobs(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	jobs := db.Collection(harmonia.CollectionJobs)
	attempt := func(msg string) bson.A { return bson.A{bson.D{{Key: "attempt", Value: 1}, {Key: "error", Value: msg}}} }
	job := func(name, msg string, attempts bson.A) bson.D {
		d := bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: name}, {Key: "status", Value: "failed"}, {Key: "error", Value: msg}}
		if attempts != nil {
			d = append(d, bson.E{Key: "errors", Value: attempts})
		}
		return d
	}
	_, err := jobs.InsertMany(ctx, []any{
		job("cancelled", "cancelled", nil),
		job("cancelled-after-a-retry", "cancelled", attempt("timeout")),
		job("handler-said-cancelled", "cancelled", attempt("cancelled")),
		job("failed", "boom", attempt("boom")),
	})
	require.NoError(t, err)
	rep, err := newRunner(t, db, migrate.Builtin(), nil).Up(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"jobs_changed": 2}, rep.Applied[2].Counts)
	cur, err := jobs.Find(ctx, bson.D{})
	require.NoError(t, err)
	var docs []struct {
		Name   string `bson:"name"`
		Status string `bson:"status"`
		Error  string `bson:"error"`
	}
	require.NoError(t, cur.All(ctx, &docs))
	got := map[string]string{}
	for _, d := range docs {
		got[d.Name] = d.Status + "/" + d.Error
	}
	require.Equal(t, map[string]string{
		"cancelled": "cancelled/", "cancelled-after-a-retry": "cancelled/",
		"handler-said-cancelled": "failed/cancelled", "failed": "failed/boom",
	}, got)
}

func TestNormalizeTags(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"vision", "onnx"}, migrate.NormalizeTags([]string{" Vision", "ONNX", "vision", "", "  "}))
	require.Nil(t, migrate.NormalizeTags(nil))
}

// A runner killed half-way through the tags transform (its context
// cancelled between two batches): the next run reports the interrupted
// migration and finishes it. In crash mode the killed runner's goroutine
// ends there (runtime.Goexit), as a crashed process would: it leaves its
// lock and a running record, and the next runner must wait for the lease
// to expire.
func TestInterruptedMigrationIsFinishedByTheNextRun(t *testing.T) {
	t.Parallel()
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%t", crash), func(t *testing.T) {
			t.Parallel()
			db := harmoniatest.Database(t)
			clock := harmoniatest.NewClock()
			insertV1(t, db, harmonia.CollectionArtifacts, 25)
			insertV1(t, db, harmonia.CollectionDatasets, 5)
			ctx, kill := context.WithCancel(t.Context())
			defer kill()
			killing := false
			ms := migrate.BuiltinWithTransformHooks(10, func(context.Context) {
				if !killing {
					return
				}
				kill()
				if crash {
					runtime.Goexit()
				}
			})
			opts := &migrate.Options{Now: clock.Now, Owner: "killed", LockWait: 20 * time.Millisecond, LockPoll: 5 * time.Millisecond}
			killed := newRunner(t, db, ms, opts)
			_, err := killed.Up(t.Context(), &migrate.UpOpts{To: migrate.VersionCreateIndexes})
			require.NoError(t, err)

			killing = true
			returned := false
			var wg sync.WaitGroup
			wg.Go(func() {
				_, err = killed.Up(ctx, nil)
				returned = true
			})
			wg.Wait()
			require.Equal(t, !crash, returned, "a crashed runner never returns")
			if !crash {
				require.ErrorIs(t, err, context.Canceled)
			}
			require.Equal(t, map[int]int{1: 15, 2: 10}, schemaVersions(t, db, harmonia.CollectionArtifacts), "one batch was done")

			next := newRunner(t, db, migrate.Builtin(), &migrate.Options{Now: clock.Now, Owner: "next", LockWait: 20 * time.Millisecond, LockPoll: 5 * time.Millisecond})
			st, err := next.Status(t.Context())
			require.NoError(t, err)
			if crash {
				require.Equal(t, migrate.StateRunning, st.Migrations[1].State)
				require.Equal(t, "killed", st.Lock.Owner)
				require.Zero(t, st.Interrupted, "the lock is still held: it may be running")
				_, err = next.Up(t.Context(), nil)
				requireCode(t, err, harmonia.CodeConflict, "held by killed")
				clock.Advance(migrate.LockLeaseDefault)
				st, err = next.Status(t.Context())
				require.NoError(t, err)
				require.True(t, st.Lock.Expired)
			} else {
				require.Equal(t, migrate.StateInterrupted, st.Migrations[1].State)
				require.Contains(t, st.Migrations[1].Error, "context canceled")
				require.Nil(t, st.Lock, "a cancelled runner releases its lock")
			}
			require.Equal(t, 1, st.Interrupted)

			rep, err := next.Up(t.Context(), nil)
			require.NoError(t, err)
			require.Equal(t, []int64{2, 3, 4, 5, 6}, versions(rep.Applied))
			require.True(t, rep.Applied[0].Resumed)
			require.Equal(t, map[string]int64{
				"model_artifacts_scanned": 15, "model_artifacts_changed": 15, "datasets_scanned": 5, "datasets_changed": 5,
			}, rep.Applied[0].Counts)
			require.Equal(t, map[int]int{2: 25}, schemaVersions(t, db, harmonia.CollectionArtifacts))
			require.Equal(t, map[int]int{2: 5}, schemaVersions(t, db, harmonia.CollectionDatasets))
			st, err = next.Status(t.Context())
			require.NoError(t, err)
			require.Equal(t, migrate.StateApplied, st.Migrations[1].State)
			require.Equal(t, 2, st.Migrations[1].Attempts)
			require.Nil(t, st.Lock)
		})
	}
}

// On a deployment with transactions a failing migration leaves nothing
// behind.
func TestFailingMigrationInATransactionWritesNothing(t *testing.T) {
	harmoniatest.RequireTransactions(t)
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	require.NoError(t, db.CreateCollection(ctx, "runs"))
	half := migrate.Migration{Version: 1, Name: "half", Up: func(ctx context.Context, db *mongo.Database) error {
		if err := incRuns(ctx, db, 1, 1); err != nil {
			return err
		}
		return errors.New("second step failed")
	}}
	r := newRunner(t, db, []migrate.Migration{half}, nil)
	rep, err := r.Up(ctx, nil)
	requireCode(t, err, harmonia.CodeInternal, "second step failed")
	require.True(t, rep.Failed.Transaction)
	require.Empty(t, runs(t, db), "the transaction rolled the first step back")
}

func TestBuiltinNormalizeSPDXIDsMergesCaseVariants(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	licenses := db.Collection(harmonia.CollectionLicenses)
	ids := map[string]bson.ObjectID{}
	var docs []any
	for _, spdx := range []string{"mit", "MIT", " MIT", "apache-2.0", "BSD-3-Clause"} {
		ids[spdx] = bson.NewObjectID()
		docs = append(docs, bson.D{{Key: "_id", Value: ids[spdx]}, {Key: "spdx_id", Value: spdx}})
	}
	_, err := licenses.InsertMany(ctx, docs)
	require.NoError(t, err)
	_, err = db.Collection(harmonia.CollectionArtifacts).InsertMany(ctx, []any{
		bson.D{{Key: "name", Value: "a"}, {Key: "license_id", Value: ids["mit"]}},
		bson.D{{Key: "name", Value: "b"}, {Key: "license_id", Value: ids[" MIT"]}},
	})
	require.NoError(t, err)
	_, err = db.Collection(harmonia.CollectionDatasets).InsertOne(ctx, bson.D{{Key: "name", Value: "d"}, {Key: "license_id", Value: ids["mit"]}})
	require.NoError(t, err)

	rep, err := newRunner(t, db, migrate.Builtin(), nil).Up(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, migrate.VersionSPDXCanonical, rep.Applied[3].Version)
	require.Equal(t, map[string]int64{"licenses_merged": 2, "licenses_renamed": 1, "references_changed": 3}, rep.Applied[3].Counts)

	cur, err := licenses.Find(ctx, bson.D{})
	require.NoError(t, err)
	var got []struct {
		ID     bson.ObjectID `bson:"_id"`
		SPDXID string        `bson:"spdx_id"`
	}
	require.NoError(t, cur.All(ctx, &got))
	byID := map[bson.ObjectID]string{}
	for _, l := range got {
		byID[l.ID] = l.SPDXID
	}
	require.Equal(t, map[bson.ObjectID]string{ids["MIT"]: "MIT", ids["apache-2.0"]: "Apache-2.0", ids["BSD-3-Clause"]: "BSD-3-Clause"}, byID)
	for _, col := range []string{harmonia.CollectionArtifacts, harmonia.CollectionDatasets} {
		n, err := db.Collection(col).CountDocuments(ctx, bson.D{{Key: "license_id", Value: bson.D{{Key: "$ne", Value: ids["MIT"]}}}})
		require.NoError(t, err)
		require.Zero(t, n, "every %s points at the kept MIT", col)
	}
}

// TestBuiltinVersionDigests: versions published before digests get the
// digest of their stored manifest; versions that have one keep it.
func TestBuiltinVersionDigests(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	versions := db.Collection(harmonia.CollectionVersions)
	manifest := harmonia.Manifest{
		Artifacts: []harmonia.ManifestItem{{ID: bson.NewObjectID(), Name: "resnet", Version: "1", SHA256: "ab", SizeBytes: 3, LicenseSPDXID: "MIT"}},
		Datasets:  []harmonia.ManifestItem{},
	}
	old := bson.NewObjectID()
	_, err := versions.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: old}, {Key: "version_tag", Value: "old"}, {Key: "manifest", Value: manifest}},
		bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "version_tag", Value: "new"}, {Key: "manifest", Value: manifest}, {Key: "digest", Value: "sha256:kept"}},
	})
	require.NoError(t, err)
	rep, err := newRunner(t, db, migrate.Builtin(), nil).Up(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"versions_changed": 1}, rep.Applied[4].Counts)
	want, err := harmonia.ManifestDigest(manifest)
	require.NoError(t, err)
	var got []struct {
		Tag    string `bson:"version_tag"`
		Digest string `bson:"digest"`
	}
	cur, err := versions.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "version_tag", Value: 1}}))
	require.NoError(t, err)
	require.NoError(t, cur.All(ctx, &got))
	require.Equal(t, "new", got[0].Tag)
	require.Equal(t, "sha256:kept", got[0].Digest)
	require.Equal(t, want, got[1].Digest)
}

// indexSet returns the index names of col.
func indexSet(t *testing.T, col *mongo.Collection) map[string]bool {
	t.Helper()
	specs, err := col.Indexes().ListSpecifications(t.Context())
	require.NoError(t, err)
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	return names
}

// Migration 6 on a database of before it (version 5: the unique index on
// {name, version}, no name_key) whose names collide in letter case and
// Unicode form: it reports every colliding entry, merges and writes
// nothing, and blocks; once a person has deleted the extra entries and
// resolved it, it keys every name, builds the new index and drops the
// former one. Its Down restores the former index.
func TestBuiltinNameKeysReportCollisions(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	r := newRunner(t, db, migrate.Builtin(), nil)
	_, err := r.Up(ctx, &migrate.UpOpts{To: migrate.VersionDigests})
	require.NoError(t, err)
	arts := db.Collection(harmonia.CollectionArtifacts)
	// Make it a database of version 5: the former index, no name keys.
	for _, col := range []*mongo.Collection{arts, db.Collection(harmonia.CollectionDatasets)} {
		require.NoError(t, col.Indexes().DropOne(ctx, "uniq_name_key_version"))
		_, err := col.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: 1}, {Key: "version", Value: 1}},
			Options: options.Index().SetName("uniq_name_version").SetUnique(true)})
		require.NoError(t, err)
	}
	doc := func(name, version string) bson.D {
		return bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "schema_version", Value: 2}, {Key: "name", Value: name},
			{Key: "version", Value: version}, {Key: "path", Value: "m.onnx"}}
	}
	resnetUpper, cafeNFD := doc("RESNET50", "1.0"), doc("cafe\u0301", "1")
	_, err = arts.InsertMany(ctx, []any{doc("resnet50", "1.0"), resnetUpper, doc("ResNet50", "2.0"),
		doc("caf\u00e9", "1"), cafeNFD, doc("other", "1.0")})
	require.NoError(t, err)

	_, err = r.Up(ctx, nil)
	require.ErrorIs(t, err, harmonia.ErrConflict)
	require.ErrorIs(t, err, harmonia.ErrNameCollision)
	msg := err.Error()
	require.Contains(t, msg, "2 entries")
	require.Contains(t, msg, `"RESNET50"@"1.0"`)
	require.Contains(t, msg, "\"cafe\u0301\"@\"1\"")
	n, err := arts.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.EqualValues(t, 6, n, "nothing merged")
	n, err = arts.CountDocuments(ctx, bson.D{{Key: "name_key", Value: bson.D{{Key: "$exists", Value: true}}}})
	require.NoError(t, err)
	require.Zero(t, n, "nothing written while names collide")
	require.False(t, indexSet(t, arts)["uniq_name_key_version"])
	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, migrate.StateFailed, st.Migrations[5].State)
	require.Contains(t, st.Migrations[5].Error, "RESNET50", "the record keeps the report")

	for _, d := range []bson.D{resnetUpper, cafeNFD} {
		_, err := arts.DeleteOne(ctx, bson.D{{Key: "_id", Value: d[0].Value}})
		require.NoError(t, err)
	}
	require.NoError(t, r.Resolve(ctx, migrate.VersionNameKeys, nil))
	rep, err := r.Up(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{6}, versions(rep.Applied))
	ix := indexSet(t, arts)
	require.True(t, ix["uniq_name_key_version"])
	require.False(t, ix["uniq_name_version"])
	n, err = arts.CountDocuments(ctx, bson.D{{Key: "name_key", Value: "resnet50"}})
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "resnet50@1.0 and ResNet50@2.0 share a key, not a version")

	s, err := harmonia.Open(ctx, db, nil)
	require.NoError(t, err)
	err = s.CreateArtifact(ctx, &harmonia.ModelArtifact{Name: "Other", Version: "1.0", Path: "m.onnx"})
	require.ErrorIs(t, err, harmonia.ErrConflict, "a new spelling of a stored name is refused")

	_, err = r.Down(ctx)
	require.NoError(t, err)
	ix = indexSet(t, arts)
	require.True(t, ix["uniq_name_version"])
	require.False(t, ix["uniq_name_key_version"])
}

// DownSteps, Goto and Force have golang-migrate's meanings: down N
// reverts N, highest first; goto moves up or down to a version; force
// records a version without running anything and clears failures.
func TestDownStepsGotoAndForce(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t)
	ctx := t.Context()
	ms := []migrate.Migration{marker(1, "one"), marker(2, "two"), marker(3, "three"), marker(4, "four")}
	r := newRunner(t, db, ms, nil)
	_, err := r.Up(ctx, nil)
	require.NoError(t, err)

	rep, err := r.DownSteps(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, []int64{4, 3}, versions(rep.Reverted))
	require.EqualValues(t, 2, rep.Current)
	require.Equal(t, map[int64]int{1: 1, 2: 1}, runs(t, db))

	rep, err = r.Goto(ctx, 4)
	require.NoError(t, err)
	require.Equal(t, []int64{3, 4}, versions(rep.Applied))
	require.EqualValues(t, 4, rep.Current)
	rep, err = r.Goto(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, []int64{4, 3, 2}, versions(rep.Reverted))
	require.Empty(t, rep.Applied)
	require.EqualValues(t, 1, rep.Current)
	require.Equal(t, map[int64]int{1: 1}, runs(t, db))
	rep, err = r.Goto(ctx, 1)
	require.NoError(t, err)
	require.Empty(t, rep.Applied)
	require.Empty(t, rep.Reverted, "goto the current version does nothing")
	_, err = r.Goto(ctx, 7)
	require.ErrorIs(t, err, harmonia.ErrInvalid)

	rep, err = r.DownSteps(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, []int64{1}, versions(rep.Reverted), "0 reverts every applied migration")
	require.Zero(t, rep.Current)

	// Force records without running, and clears a failure.
	boom := migrate.Migration{Version: 5, Name: "boom", Up: func(context.Context, *mongo.Database) error { return errors.New("boom") }}
	r = newRunner(t, db, append(ms, boom), nil)
	_, err = r.Up(ctx, nil)
	require.Error(t, err)
	require.Equal(t, map[int64]int{1: 1, 2: 1, 3: 1, 4: 1}, runs(t, db))
	_, err = r.Up(ctx, nil)
	require.ErrorIs(t, err, harmonia.ErrConflict, "a failed record blocks")
	require.NoError(t, r.Force(ctx, 5))
	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, st.Current)
	require.Zero(t, st.Failed)
	require.Contains(t, st.Migrations[4].Error, "forced")
	require.NoError(t, r.Force(ctx, 2))
	st, err = r.Status(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, st.Current)
	require.Equal(t, 3, st.Pending)
	require.Equal(t, map[int64]int{1: 1, 2: 1, 3: 1, 4: 1}, runs(t, db), "force runs nothing")
	require.ErrorIs(t, r.Force(ctx, 9), harmonia.ErrInvalid)
	require.NoError(t, r.Force(ctx, 0))
	st, err = r.Status(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Current)
}
