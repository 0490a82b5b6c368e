package harmonia_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// The histories of this file are checked for linearizability with
// porcupine: concurrent clients record when each operation was invoked
// and when it returned, and the checker looks for an order of the
// operations, each taking effect at one instant between its invocation
// and its return, that a sequential model of the store accepts. An
// operation whose outcome is unknown (its connection closed, the server
// restarted under it) may have taken effect or not: the models accept
// both, and it returns at the end of the history.

// linHistory records the operations of concurrent clients.
type linHistory struct {
	mu      sync.Mutex
	start   time.Time
	ops     []porcupine.Operation
	unknown []int
}

func newLinHistory() *linHistory { return &linHistory{start: time.Now()} }

func (h *linHistory) now() int64 { return int64(time.Since(h.start)) }

// record runs op as client and records it; op returns its output and
// whether its outcome is unknown.
func (h *linHistory) record(client int, input any, op func() (output any, unknown bool)) any {
	call := h.now()
	out, unknown := op()
	ret := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if unknown {
		h.unknown = append(h.unknown, len(h.ops))
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: input, Call: call, Output: out, Return: ret})
	return out
}

func (h *linHistory) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// operations returns the history, the operations of unknown outcome
// returning after every other.
func (h *linHistory) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	end := h.now()
	ops := append([]porcupine.Operation(nil), h.ops...)
	for _, i := range h.unknown {
		ops[i].Return = end
	}
	return ops
}

// linCheckTimeout bounds the checker; the histories are small enough to
// be checked in well under a second.
const linCheckTimeout = 30 * time.Second

// checkLinearizable fails t when ops is not linearizable under model,
// writing porcupine's visualization of the history to a file it names.
func checkLinearizable(t *testing.T, model porcupine.Model, ops []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(model, ops, linCheckTimeout)
	if res == porcupine.Ok {
		t.Logf("%d operations, linearizable", len(ops))
		return
	}
	dir, err := os.MkdirTemp("", "harmonia-linearizability-")
	require.NoError(t, err)
	path := filepath.Join(dir, "history.html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		t.Errorf("visualize: %v", err)
	}
	t.Fatalf("history of %d operations is %s under the model; visualization: %s", len(ops), res, path)
}

// linTarget is a test's own embedded server (replica-set lane) that it
// may restart, a Store on it whose client the fail points aim at, and an
// admin client that configures them.
type linTarget struct {
	srv   *harmoniatest.Restartable
	store *harmonia.Store
	admin *mongo.Client
	app   string
}

func newLinTarget(t *testing.T) *linTarget {
	t.Helper()
	harmoniatest.RequireTransactions(t)
	srv := harmoniatest.RestartableServer(t)
	app := "lin-" + bson.NewObjectID().Hex()
	// Short timeouts: an operation caught by a restart fails (an unknown
	// outcome) instead of waiting for the server.
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetAppName(app).
		SetServerSelectionTimeout(3 * time.Second).SetTimeout(8 * time.Second))
	require.NoError(t, err)
	admin, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetServerSelectionTimeout(10 * time.Second))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = client.Disconnect(context.Background())
		_ = admin.Disconnect(context.Background())
	})
	s, err := harmonia.Open(t.Context(), client.Database("lin"), &harmonia.Options{EnsureIndexes: true})
	require.NoError(t, err)
	return &linTarget{srv: srv, store: s, admin: admin, app: app}
}

// faults sets a failCommand fail point on commands of the target's
// client every interval until ctx ends: in turn an error (a plain one, or
// a transient one inside transactions that the driver retries), a closed
// connection, and a blocked command. Configuring fails while the server
// restarts; the next round tries again.
func (lt *linTarget) faults(ctx context.Context, commands []string, interval time.Duration, seed uint64) *sync.WaitGroup {
	var wg sync.WaitGroup
	rng := rand.New(rand.NewPCG(seed, 1))
	kinds := []bson.D{
		{{Key: "errorCode", Value: 2}},
		{{Key: "errorCode", Value: 112}, {Key: "errorLabels", Value: bson.A{"TransientTransactionError"}}},
		{{Key: "closeConnection", Value: true}},
		{{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 150}},
	}
	wg.Go(func() {
		defer func() { _ = lt.failPoint(context.Background(), "off", nil) }()
		for round := 0; ; round++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
			cmd := commands[rng.IntN(len(commands))]
			data := append(bson.D{{Key: "failCommands", Value: bson.A{cmd}}, {Key: "appName", Value: lt.app}}, kinds[round%len(kinds)]...)
			_ = lt.failPoint(ctx, bson.D{{Key: "times", Value: 1}}, data)
		}
	})
	return &wg
}

func (lt *linTarget) failPoint(ctx context.Context, mode any, data bson.D) error {
	cmd := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: mode}}
	if data != nil {
		cmd = append(cmd, bson.E{Key: "data", Value: data})
	}
	return lt.admin.Database("admin").RunCommand(ctx, cmd).Err()
}

// restartAfter stops the server once h holds n operations, for a moment,
// and starts it again; it logs how many operations came before.
func (lt *linTarget) restartAfter(t *testing.T, h *linHistory, n int) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() {
		for h.len() < n {
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("restart after %d operations", h.len())
		if err := lt.srv.Stop(); err != nil {
			t.Errorf("stop: %v", err)
			return
		}
		time.Sleep(300 * time.Millisecond)
		if err := lt.srv.Start(context.Background()); err != nil {
			t.Errorf("restart: %v", err)
		}
	})
	return &wg
}

// opCtx bounds one operation, so that none waits past a restart for long.
func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 15*time.Second)
}

// ---- (a) alias moves with compare-and-set, and reads ----

// aliasInput is a read (Read) or a compare-and-set move from Expect to To.
type aliasInput struct {
	Read       bool
	Expect, To string
}

// aliasOutput is what the operation returned: the target read ("" for
// none), whether a move happened (Moved) or was refused because the
// alias was elsewhere (Refused), or neither known (Unknown).
type aliasOutput struct {
	Target         string
	Moved, Refused bool
	Unknown        bool
}

// aliasModel is the sequential specification of one alias: its state is
// its target.
func aliasModel() porcupine.Model {
	return (&porcupine.NondeterministicModel{
		Init: func() []any { return []any{""} },
		Step: func(state, input, output any) []any {
			cur, in, out := state.(string), input.(aliasInput), output.(aliasOutput)
			switch {
			case out.Unknown && in.Read:
				return []any{cur}
			case out.Unknown && cur == in.Expect:
				return []any{cur, in.To}
			case out.Unknown:
				return []any{cur}
			case in.Read && out.Target == cur:
				return []any{cur}
			case !in.Read && out.Moved && cur == in.Expect:
				return []any{in.To}
			case !in.Read && out.Refused && cur != in.Expect:
				return []any{cur}
			}
			return nil
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(aliasInput), output.(aliasOutput)
			switch {
			case in.Read:
				return fmt.Sprintf("get() -> %q (unknown %t)", out.Target, out.Unknown)
			case out.Unknown:
				return fmt.Sprintf("cas(%s -> %s) -> unknown", in.Expect, in.To)
			}
			return fmt.Sprintf("cas(%s -> %s) -> moved %t", in.Expect, in.To, out.Moved)
		},
	}).ToModel()
}

// TestAliasModelRejectsLostCAS: the model refuses a history in which two
// moves expecting the same target both happened, one after the other —
// what a store that skipped the compare would record.
func TestAliasModelRejectsLostCAS(t *testing.T) {
	t.Parallel()
	ops := []porcupine.Operation{
		{ClientId: 0, Input: aliasInput{Expect: "", To: "a"}, Call: 0, Output: aliasOutput{Moved: true}, Return: 1},
		{ClientId: 1, Input: aliasInput{Expect: "a", To: "b"}, Call: 2, Output: aliasOutput{Moved: true}, Return: 3},
		{ClientId: 2, Input: aliasInput{Expect: "a", To: "c"}, Call: 4, Output: aliasOutput{Moved: true}, Return: 5},
	}
	require.False(t, porcupine.CheckOperations(aliasModel(), ops))
	ops[2].Output = aliasOutput{Refused: true}
	require.True(t, porcupine.CheckOperations(aliasModel(), ops))
	ops[2].Output = aliasOutput{Unknown: true}
	require.True(t, porcupine.CheckOperations(aliasModel(), ops), "an unknown outcome may not have happened")
	stale := porcupine.Operation{ClientId: 3, Input: aliasInput{Read: true}, Call: 6, Output: aliasOutput{Target: "a"}, Return: 7}
	require.False(t, porcupine.CheckOperations(aliasModel(), append(ops[:2:2], stale)), "a read after a move sees it")
}

// TestAliasMovesLinearizable: clients move one alias with
// compare-and-set and read it, under fail points and a server restart;
// the history is linearizable under aliasModel.
func TestAliasMovesLinearizable(t *testing.T) {
	t.Parallel()
	lt := newLinTarget(t)
	ctx := t.Context()
	tags := []string{"a", "b", "c"}
	b := &bundle{ctx: ctx, db: lt.store.Database(), store: lt.store, clock: harmoniatest.NewClock()}
	arts, _ := b.inventory(t, 1, 0)
	for _, tag := range tags {
		_, err := lt.store.Publish(ctx, harmonia.PublishRequest{VersionTag: tag, ArtifactIDs: arts, PublishedBy: "x"})
		require.NoError(t, err)
	}

	h := newLinHistory()
	fctx, stop := context.WithCancel(ctx)
	faults := lt.faults(fctx, []string{"find", "insert", "update", "commitTransaction"}, 120*time.Millisecond, 1)
	const clients, perClient = 4, 14
	restart := lt.restartAfter(t, h, clients*perClient/2)
	var wg sync.WaitGroup
	for c := range clients {
		rng := rand.New(rand.NewPCG(uint64(c), 2))
		wg.Go(func() {
			for range perClient {
				if rng.IntN(3) == 0 {
					h.record(c, aliasInput{Read: true}, func() (any, bool) {
						octx, cancel := opCtx()
						defer cancel()
						a, err := lt.store.GetAlias(octx, "prod")
						switch {
						case err == nil:
							return aliasOutput{Target: a.VersionTag}, false
						case errors.Is(err, harmonia.ErrNotFound):
							return aliasOutput{}, false
						}
						return aliasOutput{Unknown: true}, true
					})
					continue
				}
				in := aliasInput{Expect: []string{"", "a", "b", "c"}[rng.IntN(4)], To: tags[rng.IntN(len(tags))]}
				h.record(c, in, func() (any, bool) {
					octx, cancel := opCtx()
					defer cancel()
					_, err := lt.store.SetAlias(octx, "prod", in.To, &harmonia.SetAliasOpts{By: "x", ExpectVersion: in.Expect, ExpectAbsent: in.Expect == ""})
					switch {
					case err == nil:
						return aliasOutput{Moved: true}, false
					case errors.Is(err, harmonia.ErrAliasMoved):
						return aliasOutput{Refused: true}, false
					}
					return aliasOutput{Unknown: true}, true
				})
			}
		})
	}
	wg.Wait()
	stop()
	faults.Wait()
	restart.Wait()
	ops := h.operations()
	t.Logf("%d operations in %s, %d of unknown outcome", len(ops), time.Duration(h.now()), len(h.unknown))
	checkLinearizable(t, aliasModel(), ops)
}

// ---- (b) job claims, heartbeats and finishes ----

// linJobs is how many jobs the job history works on.
const linJobs = 8

// jobState is the queue as the model sees it: per job, in claim order,
// "" (pending), the lease token it runs under, or "done". A claim whose
// outcome is unknown leaves a job running under a token nobody knows.
type jobState [linJobs]string

const (
	jobDone    = "done"
	jobUnknown = "?"
)

// jobInput is a claim, or a heartbeat or finish of job Job under Token.
type jobInput struct {
	Kind  string // "claim", "heartbeat", "finish"
	Job   int
	Token string
}

// jobOutput is a claim's job and token (Job -1: none claimable), or
// whether a heartbeat or finish was accepted (OK) or refused as a lost
// lease.
type jobOutput struct {
	Job     int
	Token   string
	OK      bool
	Unknown bool
}

// jobModel is the sequential specification of the queue: a claim takes
// the first pending job in claim order, and a heartbeat or a finish is
// accepted exactly when the job runs under the caller's token.
func jobModel() porcupine.Model {
	return (&porcupine.NondeterministicModel{
		Init: func() []any { return []any{jobState{}} },
		Step: func(state, input, output any) []any {
			st, in, out := state.(jobState), input.(jobInput), output.(jobOutput)
			first := -1
			for i, s := range st {
				if s == "" {
					first = i
					break
				}
			}
			switch in.Kind {
			case "claim":
				switch {
				case out.Unknown && first < 0:
					return []any{st}
				case out.Unknown:
					next := st
					next[first] = jobUnknown
					return []any{st, next}
				case out.Job < 0 && first < 0:
					return []any{st}
				case out.Job >= 0 && out.Job == first:
					st[first] = out.Token
					return []any{st}
				}
				return nil
			case "heartbeat":
				holds := st[in.Job] == in.Token
				if out.Unknown || out.OK == holds {
					return []any{st}
				}
				return nil
			default: // finish
				holds := st[in.Job] == in.Token
				next := st
				next[in.Job] = jobDone
				switch {
				case out.Unknown && holds:
					return []any{st, next}
				case out.Unknown, !out.OK && !holds:
					return []any{st}
				case out.OK && holds:
					return []any{next}
				}
				return nil
			}
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(jobInput), output.(jobOutput)
			if in.Kind == "claim" {
				return fmt.Sprintf("claim() -> job %d (unknown %t)", out.Job, out.Unknown)
			}
			return fmt.Sprintf("%s(job %d) -> ok %t (unknown %t)", in.Kind, in.Job, out.OK, out.Unknown)
		},
	}).ToModel()
}

// TestJobModelRejectsDoubleClaim: the model refuses a job claimed twice
// and a finish by a worker whose lease was taken — what a claim that
// skipped its condition would record.
func TestJobModelRejectsDoubleClaim(t *testing.T) {
	t.Parallel()
	ops := []porcupine.Operation{
		{ClientId: 0, Input: jobInput{Kind: "claim"}, Call: 0, Output: jobOutput{Job: 0, Token: "t1"}, Return: 1},
		{ClientId: 1, Input: jobInput{Kind: "claim"}, Call: 2, Output: jobOutput{Job: 0, Token: "t2"}, Return: 3},
	}
	require.False(t, porcupine.CheckOperations(jobModel(), ops))
	ops[1].Output = jobOutput{Job: 1, Token: "t2"}
	require.True(t, porcupine.CheckOperations(jobModel(), ops))
	finish := porcupine.Operation{ClientId: 1, Input: jobInput{Kind: "finish", Job: 0, Token: "t2"}, Call: 4, Output: jobOutput{OK: true}, Return: 5}
	require.False(t, porcupine.CheckOperations(jobModel(), append(ops, finish)), "t2 holds job 1, not job 0")
	ops[0].Output = jobOutput{Unknown: true}
	require.True(t, porcupine.CheckOperations(jobModel(), ops), "an unknown claim may have taken job 0")
}

// TestJobQueueLinearizable: workers claim, heart-beat and finish jobs
// under fail points and a server restart; the history is linearizable
// under jobModel.
func TestJobQueueLinearizable(t *testing.T) {
	t.Parallel()
	lt := newLinTarget(t)
	ctx := t.Context()
	ids := make([]bson.ObjectID, linJobs)
	for i := range ids {
		res, err := lt.store.Queue().Enqueue(ctx, "lin", nil, nil)
		require.NoError(t, err)
		ids[i] = res.Job.ID
	}
	index := func(id bson.ObjectID) int {
		for i, x := range ids {
			if x == id {
				return i
			}
		}
		return -2
	}
	h := newLinHistory()
	fctx, stop := context.WithCancel(ctx)
	faults := lt.faults(fctx, []string{"find", "update"}, 100*time.Millisecond, 2)
	restart := lt.restartAfter(t, h, linJobs)
	// Leases outlive the test: no expiry, which the model leaves out.
	const lease = 10 * time.Minute
	const workers = 3
	var wg sync.WaitGroup
	for w := range workers {
		rng := rand.New(rand.NewPCG(uint64(w), 3))
		wg.Go(func() {
			for range 2 * linJobs {
				var job *harmonia.Job
				out := h.record(w, jobInput{Kind: "claim"}, func() (any, bool) {
					octx, cancel := opCtx()
					defer cancel()
					jobs, err := lt.store.Queue().ClaimJobs(octx, fmt.Sprintf("w%d", w), []harmonia.JobType{"lin"}, 1, lease)
					switch {
					case err != nil:
						return jobOutput{Unknown: true}, true
					case len(jobs) == 0:
						return jobOutput{Job: -1}, false
					}
					job = jobs[0]
					return jobOutput{Job: index(job.ID), Token: job.LeaseToken}, false
				}).(jobOutput)
				if out.Unknown {
					continue
				}
				if out.Job < 0 {
					return
				}
				for range rng.IntN(3) {
					h.record(w, jobInput{Kind: "heartbeat", Job: out.Job, Token: out.Token}, func() (any, bool) {
						octx, cancel := opCtx()
						defer cancel()
						err := lt.store.Queue().Heartbeat(octx, job, lease)
						if err != nil && !errors.Is(err, harmonia.ErrLeaseLost) {
							return jobOutput{Unknown: true}, true
						}
						return jobOutput{OK: err == nil}, false
					})
				}
				h.record(w, jobInput{Kind: "finish", Job: out.Job, Token: out.Token}, func() (any, bool) {
					octx, cancel := opCtx()
					defer cancel()
					errs, err := lt.store.Queue().WriteLeases(octx, []*harmonia.LeaseWrite{{Job: job, Op: harmonia.LeaseComplete}})
					if err != nil {
						return jobOutput{Unknown: true}, true
					}
					if errs[0] != nil && !errors.Is(errs[0], harmonia.ErrLeaseLost) {
						return jobOutput{Unknown: true}, true
					}
					return jobOutput{OK: errs[0] == nil}, false
				})
			}
		})
	}
	wg.Wait()
	stop()
	faults.Wait()
	restart.Wait()
	ops := h.operations()
	t.Logf("%d operations in %s, %d of unknown outcome", len(ops), time.Duration(h.now()), len(h.unknown))
	checkLinearizable(t, jobModel(), ops)
}

// ---- (c) publishes of overlapping tags, and reads of versions ----

// publishInput publishes Contents ("A" or "B") as Tag, or reads Tag.
type publishInput struct {
	Read          bool
	Tag, Contents string
}

// publishOutput is what a publish answered (Created, Existing: the same
// contents were there, Conflict: other contents were), or the contents a
// read found ("" for no version).
type publishOutput struct {
	Created, Existing, Conflict bool
	Contents                    string
	Unknown                     bool
}

// publishState maps each tag to the contents published under it.
type publishState [2]string

var publishTags = []string{"t0", "t1"}

func tagIndex(tag string) int {
	if tag == publishTags[1] {
		return 1
	}
	return 0
}

// publishModel is the sequential specification of versions: a tag is
// published once, and for good.
func publishModel() porcupine.Model {
	return (&porcupine.NondeterministicModel{
		Init: func() []any { return []any{publishState{}} },
		Step: func(state, input, output any) []any {
			st, in, out := state.(publishState), input.(publishInput), output.(publishOutput)
			cur := &st[tagIndex(in.Tag)]
			switch {
			case in.Read && (out.Unknown || out.Contents == *cur):
				return []any{st}
			case in.Read:
				return nil
			case out.Unknown && *cur == "":
				next := st
				next[tagIndex(in.Tag)] = in.Contents
				return []any{st, next}
			case out.Unknown:
				return []any{st}
			case out.Created && *cur == "":
				*cur = in.Contents
				return []any{st}
			case out.Existing && *cur == in.Contents, out.Conflict && *cur != "" && *cur != in.Contents:
				return []any{st}
			}
			return nil
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(publishInput), output.(publishOutput)
			if in.Read {
				return fmt.Sprintf("read(%s) -> %q", in.Tag, out.Contents)
			}
			return fmt.Sprintf("publish(%s, %s) -> %+v", in.Tag, in.Contents, out)
		},
	}).ToModel()
}

// TestPublishModelRejectsTwoContents: the model refuses a tag created
// twice with different contents, and a read that misses a publish that
// returned before it.
func TestPublishModelRejectsTwoContents(t *testing.T) {
	t.Parallel()
	ops := []porcupine.Operation{
		{ClientId: 0, Input: publishInput{Tag: "t0", Contents: "A"}, Call: 0, Output: publishOutput{Created: true}, Return: 1},
		{ClientId: 1, Input: publishInput{Tag: "t0", Contents: "B"}, Call: 2, Output: publishOutput{Created: true}, Return: 3},
	}
	require.False(t, porcupine.CheckOperations(publishModel(), ops))
	ops[1].Output = publishOutput{Conflict: true}
	require.True(t, porcupine.CheckOperations(publishModel(), ops))
	read := porcupine.Operation{ClientId: 2, Input: publishInput{Read: true, Tag: "t0"}, Call: 4, Output: publishOutput{}, Return: 5}
	require.False(t, porcupine.CheckOperations(publishModel(), append(ops, read)))
}

// TestPublishesLinearizable: clients publish two contents with
// overlapping artifacts under two tags, and read the versions, under fail
// points; the history is linearizable under publishModel, and the
// inventory is whole after it.
func TestPublishesLinearizable(t *testing.T) {
	t.Parallel()
	lt := newLinTarget(t)
	ctx := t.Context()
	b := &bundle{ctx: ctx, db: lt.store.Database(), store: lt.store, clock: harmoniatest.NewClock()}
	arts, dss := b.inventory(t, 3, 1)
	contents := map[string]harmonia.PublishRequest{
		"A": {ArtifactIDs: arts[:2], DatasetIDs: dss, PublishedBy: "x"},
		"B": {ArtifactIDs: arts[1:], PublishedBy: "x"},
	}
	byArtifacts := func(v *harmonia.InventoryVersion) string {
		if len(v.DatasetIDs) > 0 {
			return "A"
		}
		return "B"
	}
	h := newLinHistory()
	fctx, stop := context.WithCancel(ctx)
	faults := lt.faults(fctx, []string{"find", "insert", "update", "commitTransaction"}, 100*time.Millisecond, 3)
	const clients, perClient = 4, 8
	var wg sync.WaitGroup
	for c := range clients {
		rng := rand.New(rand.NewPCG(uint64(c), 4))
		wg.Go(func() {
			for range perClient {
				tag := publishTags[rng.IntN(len(publishTags))]
				if rng.IntN(3) == 0 {
					h.record(c, publishInput{Read: true, Tag: tag}, func() (any, bool) {
						octx, cancel := opCtx()
						defer cancel()
						v, err := lt.store.GetVersionByTag(octx, tag)
						switch {
						case err == nil:
							return publishOutput{Contents: byArtifacts(v)}, false
						case errors.Is(err, harmonia.ErrNotFound):
							return publishOutput{}, false
						}
						return publishOutput{Unknown: true}, true
					})
					continue
				}
				name := []string{"A", "B"}[rng.IntN(2)]
				h.record(c, publishInput{Tag: tag, Contents: name}, func() (any, bool) {
					octx, cancel := opCtx()
					defer cancel()
					req := contents[name]
					req.VersionTag = tag
					res, err := lt.store.Publish(octx, req)
					switch {
					case err == nil && res.Created:
						return publishOutput{Created: true}, false
					case err == nil:
						return publishOutput{Existing: true}, false
					case errors.Is(err, harmonia.ErrConflict) && isTagConflict(err):
						return publishOutput{Conflict: true}, false
					}
					return publishOutput{Unknown: true}, true
				})
			}
		})
	}
	wg.Wait()
	stop()
	faults.Wait()
	ops := h.operations()
	t.Logf("%d operations in %s, %d of unknown outcome", len(ops), time.Duration(h.now()), len(h.unknown))
	checkLinearizable(t, publishModel(), ops)
	rep, err := lt.store.Check(ctx, nil)
	require.NoError(t, err)
	require.True(t, rep.OK(), "problems after the history: %v", rep.Problems)
}

// isTagConflict tells the conflict of a tag published with other
// contents from other conflicts.
func isTagConflict(err error) bool {
	var he *harmonia.Error
	return errors.As(err, &he) && he.Field == "version_tag"
}
