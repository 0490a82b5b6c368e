package harmoniatest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// verdictTB records what StallProbe.Require made of an assertion, instead
// of ending the test.
type verdictTB struct {
	testing.TB
	skipped, failed string
}

func (v *verdictTB) Skipf(format string, args ...any)  { v.skipped = fmt.Sprintf(format, args...) }
func (v *verdictTB) Fatalf(format string, args ...any) { v.failed = fmt.Sprintf(format, args...) }

// TestStallProbe: a passing assertion passes; a failing one fails when
// the measured stall is within the margin and skips, naming the
// assertion and both stalls, when it is past the margin; the probe
// measures the server's round trip.
func TestStallProbe(t *testing.T) {
	t.Parallel()
	p := StartStallProbe(t)
	require.Eventually(t, func() bool { return p.Stall().Server > 0 }, time.Minute, 5*time.Millisecond,
		"the probe measured no round trip")

	v := &verdictTB{TB: t}
	p.Require(v, true, 0, "unused")
	require.Empty(t, v.skipped+v.failed, "a passing assertion")

	v = &verdictTB{TB: t}
	p.Require(v, false, time.Hour, "%d leases lost", 3)
	require.Empty(t, v.skipped)
	require.Contains(t, v.failed, "3 leases lost")
	require.Contains(t, v.failed, "within the test's margin of 1h0m0s")

	v = &verdictTB{TB: t}
	p.Require(v, false, 0, "%d leases lost", 3)
	require.Empty(t, v.failed)
	require.Contains(t, v.skipped, "3 leases lost")
	require.Contains(t, v.skipped, "scheduler stalled up to")
	require.Contains(t, v.skipped, "server round trip up to")

	s := p.Stop()
	require.Equal(t, s, p.Stop(), "a stopped probe measures no more")
	require.Equal(t, max(s.Scheduler, s.Server), s.Worst())
	require.True(t, strings.HasPrefix(s.String(), "scheduler stalled up to "), s.String())
}
