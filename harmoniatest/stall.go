package harmoniatest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Intervals of a StallProbe's two measures.
const (
	// StallProbeTick is how long the probe's goroutine sleeps between two
	// readings of the clock; what it overslept is the scheduler's stall.
	StallProbeTick = 10 * time.Millisecond
	// StallProbeRoundTripEvery is how often the probe sends the server a
	// cheap command (a find of one document in an empty collection).
	StallProbeRoundTripEvery = 50 * time.Millisecond
)

// Stall is what a [StallProbe] measured: the worst delays a test's code
// could have met for reasons of the machine rather than of the code
// under test.
type Stall struct {
	// Scheduler is the worst overshoot of a StallProbeTick sleep: how
	// long a runnable goroutine waited for a CPU (or a GC pause).
	Scheduler time.Duration
	// Server is the slowest round trip of the probe's cheap command, on
	// a client of its own that no fail point acts on: how long the server
	// kept any command waiting.
	Server time.Duration
}

// Worst returns the larger of the two stalls.
func (s Stall) Worst() time.Duration { return max(s.Scheduler, s.Server) }

// String names both stalls, for a test's message.
func (s Stall) String() string {
	return fmt.Sprintf("scheduler stalled up to %s, server round trip up to %s",
		s.Scheduler.Round(time.Millisecond), s.Server.Round(time.Millisecond))
}

// StallProbe tells a starved machine from a defect in a timing test. It
// measures, while the test runs, the Go scheduler's stall and the shared
// server's (see [Stall]). When the test's timing assertion fails, [StallProbe.Require]
// compares the measured stall with the margin the test relies on (the
// slack between what the code under test must do and the deadline it
// must meet): a stall beyond the margin skips the test, naming the
// stall; otherwise the test fails, as the defect it then is. It never
// bounds a test by wall-clock time itself.
//
// A probe is started by [StartStallProbe] and stops when its test ends or
// at [StallProbe.Stop]; it is safe for concurrent use.
type StallProbe struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
	mu     sync.Mutex
	stall  Stall
}

// StartStallProbe starts measuring the scheduler's and the shared
// server's stalls until t ends or Stop is called. The server is probed on
// the shared server's client, not on a FailPointDatabase's, so that the
// test's fail point does not hold the probe's commands.
func StartStallProbe(t testing.TB) *StallProbe {
	t.Helper()
	coll := freshDatabase(t, sharedServer(t).client).Collection("stall_probe")
	ctx, cancel := context.WithCancel(context.Background())
	p := &StallProbe{cancel: cancel}
	p.done.Add(2)
	go p.probeScheduler(ctx)
	go p.probeServer(ctx, coll)
	t.Cleanup(func() { p.Stop() })
	return p
}

func (p *StallProbe) probeScheduler(ctx context.Context) {
	defer p.done.Done()
	for ctx.Err() == nil {
		start := time.Now()
		time.Sleep(StallProbeTick)
		p.record(func(s *Stall) { s.Scheduler = max(s.Scheduler, time.Since(start)-StallProbeTick) })
	}
}

func (p *StallProbe) probeServer(ctx context.Context, coll *mongo.Collection) {
	defer p.done.Done()
	tick := time.NewTicker(StallProbeRoundTripEvery)
	defer tick.Stop()
	for {
		start := time.Now()
		err := coll.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, mongo.ErrNoDocuments) {
			p.record(func(s *Stall) { s.Server = max(s.Server, time.Since(start)) })
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *StallProbe) record(f func(*Stall)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.stall)
}

// Stall returns the worst stalls measured so far.
func (p *StallProbe) Stall() Stall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stall
}

// Stop ends the measures and returns the worst stalls measured. Later
// calls return the same.
func (p *StallProbe) Stop() Stall {
	p.cancel()
	p.done.Wait()
	return p.Stall()
}

// Require passes when ok. Otherwise it stops the probe and skips t when
// the measured stall exceeds margin, the slack the assertion relies on,
// with a message that gives the assertion, the stall and the margin;
// and else fails t with the assertion's message, format and args as
// fmt.Sprintf takes them.
func (p *StallProbe) Require(t testing.TB, ok bool, margin time.Duration, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	s := p.Stop()
	if s.Worst() > margin {
		t.Skipf("%s, but the machine was starved beyond the test's margin of %s: %s", msg, margin, s)
		return
	}
	t.Fatalf("%s (%s, within the test's margin of %s)", msg, s, margin)
}
