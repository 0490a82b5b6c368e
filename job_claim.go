package harmonia

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MaxClaimBatch is the most jobs one [Queue.ClaimJobs] call claims.
const MaxClaimBatch = 1000

// claimSort is the order in which jobs are claimed: priority first, then
// run-after, then age.
var claimSort = bson.D{{Key: "priority", Value: -1}, {Key: "run_after", Value: 1}, {Key: "_id", Value: 1}}

// ClaimJobs claims up to n jobs of one of types for the worker workerID
// and returns them, in claim order, or none when no job is claimable. It
// takes the same jobs as n calls of [Store.ClaimJob] would (the pending
// jobs first in line whose run-after has passed, and running jobs whose
// lease expired), with a constant number of commands whatever n:
//
//  1. one find reads the first n claimable jobs;
//  2. one update command stamps them, one statement per job, each
//     conditioned on the job being as the find read it (a pending job:
//     still pending, with the same recorded outcome; an expired job:
//     still running under the same expired lease). Every stamped job
//     gets this call's fresh lease token, the worker id and the lease;
//  3. only when a statement matched nothing (another worker took that
//     job in between) or a lease was taken over, one find by id and
//     token reads back which jobs this call holds.
//
// Each statement is atomic on its document, on MongoDB as on the embedded
// server (whose front runs one command at a time), so a job is never
// claimed by two calls: of two stamps of one job, the second no longer
// matches. A crash after the update leaves the stamped jobs running under
// a lease nobody heart-beats: they are claimed again when it expires, so
// no job is lost. When every job it read was taken by others, ClaimJobs
// looks again. The driver splits the update at the server's
// maxWriteBatchSize (100,000 statements on MongoDB, 50 on the embedded
// server).
//
// The lease is measured on the Store's [LeaseClock]: on the server's
// clock ($$NOW) where it offers one, otherwise on the Store's clock
// (Options.Now), read before the update is sent, so that a worker that
// counts its lease from when it sent the claim never outlives it. On the
// Store's clock, other workers judge expiry on their own clocks, which
// must then agree to well within a lease (see "Leases" in the package
// documentation).
//
// Errors: [CodeInvalid] (no worker id, no types, n outside 1 to
// MaxClaimBatch, lease under a millisecond), [CodeInternal].
func (q *Queue) ClaimJobs(ctx context.Context, workerID string, types []JobType, n int, lease time.Duration) ([]*Job, error) {
	s := q.store
	if err := checkClaim(workerID, types, n, lease); err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, wrapErr(EntityJob, "claim", err)
		}
		cands, err := s.claimCandidates(ctx, types, n)
		if err != nil || len(cands) == 0 {
			return nil, err
		}
		jobs, _, err := s.stampCandidates(ctx, workerID, cands, lease)
		if err != nil || len(jobs) > 0 {
			return jobs, err
		}
	}
}

// ClaimJob claims the next job of one of types for the worker workerID,
// as [Queue.ClaimJobs] of one job does, and returns it, or nil when there
// is none. The claimed job runs under a fresh lease token that expires
// lease from now (on the Store's [LeaseClock]); every later write for the
// job ([Queue.Heartbeat], [Queue.AppendLog], [Queue.CompleteJob],
// [Queue.FailJob], [Queue.ReleaseJob], [Queue.WriteLeases]) must present
// that token. Taking over an expired lease records "lease expired" as the
// error of the attempt that lost it; when that was the job's last attempt
// the job fails instead, and the claim looks for another.
//
// Errors: as [Queue.ClaimJobs].
func (q *Queue) ClaimJob(ctx context.Context, workerID string, types []JobType, lease time.Duration) (*Job, error) {
	jobs, err := q.ClaimJobs(ctx, workerID, types, 1, lease)
	if err != nil || len(jobs) == 0 {
		return nil, err
	}
	return jobs[0], nil
}

func checkClaim(workerID string, types []JobType, n int, lease time.Duration) error {
	switch {
	case workerID == "":
		return invalidf(EntityJob, "worker_id", "a worker id is required")
	case len(types) == 0:
		return invalidf(EntityJob, "type", "name at least one job type to claim")
	case lease < time.Millisecond:
		return invalidf(EntityJob, "lease_expires_at", "the lease must be at least a millisecond (got %s)", lease)
	case n < 1 || n > MaxClaimBatch:
		return invalidf(EntityJob, "n", "claim between 1 and %d jobs at a time (got %d)", MaxClaimBatch, n)
	}
	return nil
}

// claimableFilter selects the jobs of types that a claim may take at now:
// pending jobs whose run-after has passed on the Store's clock, and
// running jobs whose lease expired on the lease clock.
func (s *Store) claimableFilter(types []JobType, now time.Time) bson.D {
	ofType := bson.E{Key: "type", Value: bson.D{{Key: "$in", Value: types}}}
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "status", Value: JobPending}, ofType, {Key: "run_after", Value: bson.D{{Key: "$lte", Value: now}}}},
		bson.D{{Key: "status", Value: JobRunning}, ofType, s.leaseExpired(now)},
	}}}
}

// claimCandidates reads the first limit claimable jobs, in claim order.
func (s *Store) claimCandidates(ctx context.Context, types []JobType, limit int) ([]jobDoc, error) {
	o := options.Find().SetSort(claimSort).SetLimit(int64(limit))
	return findAll[jobDoc](ctx, s.cols.jobs, EntityJob, s.claimableFilter(types, s.Now()), limit, o)
}

// claimSet is what a claim sets on a job.
func claimSet(workerID, token string, now, expires time.Time) bson.D {
	return bson.D{
		{Key: "status", Value: JobRunning}, {Key: "worker_id", Value: workerID}, {Key: "started_at", Value: now},
		{Key: "lease_token", Value: token}, {Key: "lease_expires_at", Value: expires}, {Key: "updated_at", Value: now},
	}
}

// expiredAttempt is the error recorded for prev's attempt, whose lease
// expired, when another claim takes the job over at now.
func expiredAttempt(prev *Job, now time.Time) AttemptError {
	expired := "lease expired"
	if prev.LeaseExpiresAt != nil {
		expired += " at " + prev.LeaseExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return AttemptError{Attempt: prev.Attempt, WorkerID: prev.WorkerID, At: now,
		Error: expired + ": worker " + prev.WorkerID + " stopped heart-beating"}
}

// expiredLastUpdate fails a job whose last attempt's lease expired.
func expiredLastUpdate(id bson.ObjectID, lastLease string, ae AttemptError, now time.Time) bson.D {
	return bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "status", Value: JobFailed}, {Key: "finished_at", Value: now}, {Key: "updated_at", Value: now},
			{Key: "error", Value: ae.Error}, {Key: "unique_lock", Value: finishedLock(id)}, {Key: "finished_lease", Value: lastLease},
		}},
		{Key: "$unset", Value: bson.D{{Key: "lease_token", Value: ""}, {Key: "lease_expires_at", Value: ""}}},
		{Key: "$push", Value: bson.D{{Key: "errors", Value: ae}}},
	}
}

// stampCandidates claims the candidates that are still as read, with one
// update command, and returns the jobs claimed and how many candidates
// were lost to other claims.
func (s *Store) stampCandidates(ctx context.Context, workerID string, cands []jobDoc, lease time.Duration) ([]*Job, int, error) {
	now := s.Now()
	expires := now.Add(lease).Truncate(time.Millisecond)
	token := rand.Text()
	set := claimSet(workerID, token, now, expires)
	inc := bson.E{Key: "$inc", Value: bson.D{{Key: "attempt", Value: 1}}}
	fresh, err := s.onLeaseClock(bson.D{{Key: "$set", Value: set}, inc}, lease)
	if err != nil {
		return nil, 0, err
	}
	models := make([]mongo.WriteModel, 0, len(cands))
	ids := make([]bson.ObjectID, 0, len(cands))
	takeovers := false
	for i := range cands {
		c := &cands[i]
		if c.Status == JobPending {
			lastLease := bson.E{Key: "finished_lease", Value: bson.D{{Key: "$exists", Value: false}}}
			if c.FinishedLease != "" {
				lastLease.Value = c.FinishedLease
			}
			filter := bson.D{{Key: "_id", Value: c.ID}, {Key: "status", Value: JobPending}, lastLease}
			models = append(models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(fresh))
			ids = append(ids, c.ID)
			continue
		}
		takeovers = true
		filter := bson.D{{Key: "_id", Value: c.ID}, {Key: "status", Value: JobRunning}, {Key: "lease_token", Value: c.LeaseToken},
			s.leaseExpired(now)}
		ae := expiredAttempt(&c.Job, now)
		if c.Attempt >= c.MaxAttempts {
			models = append(models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(expiredLastUpdate(c.ID, c.LeaseToken, ae, now)))
			continue
		}
		update, err := s.onLeaseClock(bson.D{{Key: "$set", Value: append(slices.Clone(set), bson.E{Key: "error", Value: ae.Error})}, inc,
			{Key: "$push", Value: bson.D{{Key: "errors", Value: ae}}}}, lease)
		if err != nil {
			return nil, 0, err
		}
		models = append(models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(update))
		ids = append(ids, c.ID)
	}
	sent := time.Now()
	res, err := s.cols.jobs.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if err != nil {
		return nil, 0, wrapErr(EntityJob, "claim", err)
	}
	if !takeovers && int(res.MatchedCount) == len(models) {
		jobs := make([]*Job, len(cands))
		for i := range cands {
			j := cands[i].Job
			j.Status, j.WorkerID, j.StartedAt, j.LeaseToken = JobRunning, workerID, &now, token
			j.LeaseExpiresAt, j.UpdatedAt, j.Attempt, j.ClaimSent = &expires, now, j.Attempt+1, sent
			jobs[i] = &j
		}
		return jobs, 0, nil
	}
	held, err := findAll[Job](ctx, s.cols.jobs, EntityJob,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "lease_token", Value: token}}, len(ids))
	if err != nil {
		return nil, 0, err
	}
	byID := make(map[bson.ObjectID]*Job, len(held))
	for i := range held {
		byID[held[i].ID] = &held[i]
	}
	jobs := make([]*Job, 0, len(held))
	for _, id := range ids {
		if j := byID[id]; j != nil {
			j.ClaimSent = sent
			jobs = append(jobs, j)
		}
	}
	return jobs, len(ids) - len(jobs), nil
}

// candidatePoolSize is how many claimable jobs a Store's workers read at
// once, and candidateMaxAge how long they trust what they read.
const (
	candidatePoolSize = 64
	candidateMaxAge   = time.Second
)

// candidatePool is the claimable jobs of some types that a Store's
// workers read together and share out, so that the workers of one process
// never compete for a job and one sorted read serves many claims.
type candidatePool struct {
	mu     sync.Mutex
	cands  []jobDoc
	readAt time.Time
	// enqueued is closed when the Store enqueues a job after the read.
	enqueued <-chan struct{}
}

// ClaimPool claims jobs for the workers that share it: it reads the
// claimable jobs of their types together and shares them out, so that
// the workers of one process never compete for a job and one sorted read
// serves many claims. Workers that share a Store should share one pool.
// It is safe for concurrent use.
type ClaimPool struct {
	store *Store
	mu    sync.Mutex
	pools map[string]*candidatePool
}

// NewClaimPool returns a pool that claims the jobs of store.
func NewClaimPool(store *Store) *ClaimPool {
	return &ClaimPool{store: store, pools: make(map[string]*candidatePool)}
}

func (p *ClaimPool) get(types []JobType) *candidatePool {
	key := make([]string, len(types))
	for i, t := range types {
		key[i] = string(t)
	}
	slices.Sort(key)
	k := strings.Join(key, "\x00")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pools[k] == nil {
		p.pools[k] = &candidatePool{}
	}
	return p.pools[k]
}

// take removes up to n candidates from the pool, reading the queue again
// first when the pool has fewer than n, is older than candidateMaxAge or
// predates an enqueue through the Store. It draws them at random among
// the first 4n of the pool's best priority, so that workers in several
// processes, whose pools read the same jobs, seldom stamp the same ones;
// within a priority, jobs therefore start in run-after order give or take
// a few batches.
func (p *candidatePool) take(ctx context.Context, s *Store, types []JobType, n int) ([]jobDoc, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	stale := len(p.cands) < n || time.Since(p.readAt) > candidateMaxAge
	if !stale {
		select {
		case <-p.enqueued:
			stale = true
		default:
		}
	}
	if stale {
		wake := s.enqueued.wait()
		cands, err := s.claimCandidates(ctx, types, max(candidatePoolSize, 4*n))
		if err != nil {
			return nil, err
		}
		p.cands, p.readAt, p.enqueued = cands, time.Now(), wake
	}
	window := min(len(p.cands), 4*n)
	for i := 1; i < window; i++ {
		if p.cands[i].Priority != p.cands[0].Priority {
			window = i
			break
		}
	}
	k := min(n, window)
	picked := make([]int, 0, k)
	for _, i := range mrand.Perm(window)[:k] {
		picked = append(picked, i)
	}
	slices.Sort(picked)
	out := make([]jobDoc, 0, k)
	for j := len(picked) - 1; j >= 0; j-- {
		out = append(out, p.cands[picked[j]])
		p.cands = slices.Delete(p.cands, picked[j], picked[j]+1)
	}
	slices.Reverse(out)
	return out, nil
}

// drop forgets the pool's candidates, after a claim found some of them
// taken by another process.
func (p *candidatePool) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cands = nil
}

// ClaimJobs claims up to n jobs of one of types for the worker workerID,
// as [Queue.ClaimJobs] does, through the pool's candidates: usually with
// one update command, and a sorted read only when the candidates of types
// run low, are older than a second, or predate an enqueue through the
// pool's Store ([Queue.JobsEnqueued]). It draws the jobs at random among
// the first 4n candidates of the best priority, so that the pools of
// several processes seldom pick the same ones; within a priority, jobs
// therefore start in run-after order give or take a few batches.
//
// Errors: as [Queue.ClaimJobs].
func (p *ClaimPool) ClaimJobs(ctx context.Context, workerID string, types []JobType, n int, lease time.Duration) ([]*Job, error) {
	if err := checkClaim(workerID, types, n, lease); err != nil {
		return nil, err
	}
	s := p.store
	pool := p.get(types)
	for range 3 {
		cands, err := pool.take(ctx, s, types, n)
		if err != nil || len(cands) == 0 {
			return nil, err
		}
		jobs, lost, err := s.stampCandidates(ctx, workerID, cands, lease)
		if lost > 0 {
			pool.drop()
		}
		if err != nil || len(jobs) > 0 {
			return jobs, err
		}
	}
	return nil, nil
}
