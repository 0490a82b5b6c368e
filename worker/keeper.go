package worker

import (
	"context"
	"fmt"
	"github.com/harmonia-ml/harmonia"
	"sync"
	"sync/atomic"
	"time"
)

// maxBufferedLines is how many log lines of one job a worker buffers
// before it writes them without waiting for the job's next heartbeat.
const maxBufferedLines = 100

// heldJob is a job a worker holds the lease of, from its claim until its
// outcome is written or its lease is lost.
type heldJob struct {
	job    *harmonia.Job // the keeper's copy, which its writes update
	view   harmonia.Job  // the handler's copy, as claimed
	cancel context.CancelCauseFunc

	// Guarded by the keeper's mutex.
	leaseStart time.Time            // when the claim, or the last heartbeat written, was sent
	lines      []harmonia.Event     // log lines not written yet
	outcome    *harmonia.LeaseWrite // the handler's outcome, once it returned
	counter    *atomic.Int64
	writing    bool  // a write for the job is in flight
	lost       error // why the worker gave the job up
}

// keeper is the goroutine of a running Worker that does every write for
// the jobs it holds after their claim: heartbeats, outcomes and log
// lines, together in one update command (and one insert of events) per
// round.
type keeper struct {
	w        *Worker
	mu       sync.Mutex
	held     map[*heldJob]bool
	stopped  bool      // run returned: outcomes are written by their handlers' goroutines
	retryAt  time.Time // after a failed write, when to write outcomes again
	kick     chan struct{}
	stopping chan struct{}
}

func newKeeper(w *Worker) *keeper {
	return &keeper{w: w, held: make(map[*heldJob]bool), kick: make(chan struct{}, 1), stopping: make(chan struct{})}
}

func (k *keeper) poke() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// add starts keeping the lease of h.
func (k *keeper) add(h *heldJob) {
	k.mu.Lock()
	k.held[h] = true
	k.mu.Unlock()
	k.poke()
}

// log buffers a log line of h.
func (k *keeper) log(h *heldJob, level harmonia.LogLevel, message string) error {
	ev, err := harmonia.NewLogEvent(&h.view, level, message, k.w.store.Now())
	if err != nil {
		return err
	}
	k.mu.Lock()
	if h.lost != nil {
		k.mu.Unlock()
		return h.lost
	}
	h.lines = append(h.lines, ev)
	full := len(h.lines) >= maxBufferedLines
	k.mu.Unlock()
	if full {
		k.poke()
	}
	return nil
}

// finish hands h's outcome to the keeper, which counts it in counter once
// written. After the keeper stopped, it writes the outcome itself.
func (k *keeper) finish(h *heldJob, op *harmonia.LeaseWrite, counter *atomic.Int64) {
	k.mu.Lock()
	op.Job = h.job
	if h.lost != nil {
		delete(k.held, h)
		k.mu.Unlock()
		k.w.record(h.job, h.lost, counter)
		return
	}
	if !k.stopped {
		h.outcome, h.counter = op, counter
		k.mu.Unlock()
		k.poke()
		return
	}
	delete(k.held, h)
	op.Lines, h.lines = h.lines, nil
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), workerWriteTimeout)
	defer cancel()
	errs, err := k.w.store.Queue().WriteLeases(ctx, []*harmonia.LeaseWrite{op})
	if err == nil {
		err = errs[0]
	}
	k.w.record(h.job, err, counter)
}

// drop forgets h, whose handler returned after the keeper gave its lease
// up for cause, and counts it.
func (k *keeper) drop(h *heldJob, cause error) {
	k.mu.Lock()
	delete(k.held, h)
	k.mu.Unlock()
	k.w.record(h.job, cause, nil)
}

// stop makes run write the outcomes handed over so far and return.
func (k *keeper) stop() { close(k.stopping) }

// run keeps the leases until stop.
func (k *keeper) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(k.nextDue())
		select {
		case <-k.kick:
		case <-timer.C:
		case <-k.stopping:
			k.mu.Lock()
			k.stopped = true
			k.mu.Unlock()
			k.round(ctx, false)
			return
		}
		k.gather()
		k.round(ctx, true)
	}
}

// nextDue returns how long until the next round: at once when an outcome
// waits, otherwise when the first heartbeat comes due; after a failed
// write, not before retryAt.
func (k *keeper) nextDue() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	next := time.Hour
	for h := range k.held {
		switch {
		case h.writing || h.lost != nil:
		case h.outcome != nil:
			next = 0
		default:
			next = min(next, time.Until(h.leaseStart.Add(k.w.cfg.HeartbeatInterval-k.early())))
		}
	}
	return max(next, time.Until(k.retryAt), 0)
}

// early is how much before its due time a heartbeat may go with others.
func (k *keeper) early() time.Duration { return k.w.cfg.HeartbeatInterval / 4 }

// gather waits, while outcomes wait to be written and handlers still
// run, up to BatchWait for those handlers to return, and never past the
// point where a lease would need the round.
func (k *keeper) gather() {
	deadline := time.Now().Add(k.w.cfg.BatchWait)
	for {
		k.mu.Lock()
		waiting, running := false, false
		for h := range k.held {
			switch {
			case h.writing || h.lost != nil:
			case h.outcome != nil:
				waiting = true
			default:
				running = true
				deadline = minTime(deadline, h.leaseStart.Add(k.w.cfg.LeaseDuration-k.w.cfg.HeartbeatInterval))
			}
		}
		k.mu.Unlock()
		wait := time.Until(deadline)
		if !waiting || !running || wait <= 0 {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-k.kick:
		case <-t.C:
		case <-k.stopping:
		}
		t.Stop()
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// round writes, in one batch, the outcomes handed over and, with
// heartbeats, the heartbeats that are due or nearly (with the log lines
// buffered for those jobs), then gives up the jobs whose lease it could
// not extend in time.
func (k *keeper) round(ctx context.Context, heartbeats bool) {
	cfg := &k.w.cfg
	now := time.Now()
	var hs []*heldJob
	var ops []*harmonia.LeaseWrite
	k.mu.Lock()
	for h := range k.held {
		if h.writing || h.lost != nil {
			continue
		}
		op := h.outcome
		if op == nil {
			due := !now.Before(h.leaseStart.Add(cfg.HeartbeatInterval - k.early()))
			if !heartbeats || (!due && len(h.lines) < maxBufferedLines) {
				continue
			}
			op = &harmonia.LeaseWrite{Job: h.job, Op: harmonia.LeaseHeartbeat, Lease: cfg.LeaseDuration}
		}
		op.Lines, h.lines = h.lines, nil
		h.writing = true
		hs, ops = append(hs, h), append(ops, op)
	}
	k.mu.Unlock()
	if len(ops) > 0 {
		k.write(ctx, hs, ops)
	}
	k.expire()
}

// write writes ops, those of hs, and applies the results to hs.
func (k *keeper) write(ctx context.Context, hs []*heldJob, ops []*harmonia.LeaseWrite) {
	wctx, cancel := context.WithTimeout(ctx, workerWriteTimeout)
	defer cancel()
	sent := time.Now()
	errs, err := k.w.store.Queue().WriteLeases(wctx, ops)
	if err != nil {
		k.w.log.Warn("harmonia: heartbeats and outcomes not written; retrying", "worker", k.w.cfg.ID, "jobs", len(ops), "err", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.retryAt = time.Now().Add(k.early())
	}
	for i, h := range hs {
		h.writing = false
		op := ops[i]
		switch {
		case err != nil:
			h.lines = append(op.Lines, h.lines...)
		case errs[i] == nil && op.Op == harmonia.LeaseHeartbeat:
			h.leaseStart = sent
		case op.Op == harmonia.LeaseHeartbeat:
			h.lost = errs[i]
			h.cancel(errs[i])
			if h.outcome != nil {
				delete(k.held, h)
				k.w.record(h.job, h.lost, h.counter)
			}
		default:
			delete(k.held, h)
			k.w.record(h.job, errs[i], h.counter)
		}
	}
}

// expire gives up the jobs whose lease the worker could not extend
// before it ran out on the worker's clock, counted from the sending of
// the claim or of the last heartbeat written: another worker may claim
// them.
func (k *keeper) expire() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for h := range k.held {
		if h.writing || h.lost != nil || time.Since(h.leaseStart) < k.w.cfg.LeaseDuration {
			continue
		}
		h.lost = &harmonia.Error{Code: harmonia.CodeConflict, Entity: harmonia.EntityJob, Field: "lease_expires_at", Err: harmonia.ErrLeaseLost,
			Reason: fmt.Sprintf("worker %s could not extend the lease of job %s (attempt %d) in time: another worker may run it",
				k.w.cfg.ID, h.job.ID.Hex(), h.job.Attempt)}
		h.cancel(h.lost)
		if h.outcome != nil {
			delete(k.held, h)
			k.w.record(h.job, h.lost, h.counter)
		}
	}
}
