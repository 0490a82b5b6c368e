package harmonia

import (
	"errors"
	"testing"
)

// resolveLeaseClock takes the server's clock where it can unless told
// otherwise, and refuses LeaseClockServer where the server has none.
func TestLeaseClockResolve(t *testing.T) {
	t.Parallel()
	with, without := Capabilities{ServerClock: true}, Capabilities{Topology: "standalone", ServerVersion: "4.0.28"}
	for _, c := range []struct {
		want    LeaseClock
		caps    Capabilities
		got     LeaseClock
		invalid bool
	}{
		{LeaseClockAuto, with, LeaseClockServer, false},
		{LeaseClockAuto, without, LeaseClockLocal, false},
		{LeaseClockServer, with, LeaseClockServer, false},
		{LeaseClockServer, without, 0, true},
		{LeaseClockLocal, with, LeaseClockLocal, false},
		{LeaseClock(7), with, 0, true},
	} {
		got, err := resolveLeaseClock(c.want, c.caps)
		if c.invalid {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v on %+v: got %v, %v; want an invalid-argument error", c.want, c.caps, got, err)
			}
			continue
		}
		if err != nil || got != c.got {
			t.Errorf("%v on %+v: got %v, %v; want %v", c.want, c.caps, got, err, c.got)
		}
	}
	if s := LeaseClock(7).String(); s != "LeaseClock(7)" {
		t.Errorf("String of an unknown clock: %q", s)
	}
}
