package harmoniatest

import (
	"sync"
	"time"
)

// Clock is a controllable clock for the Now of harmonia.TestOptions and
// of migrate's options: it stands still until Advance moves it. It is
// safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at 2026-11-01 12:00 UTC.
func NewClock() *Clock {
	return &Clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
