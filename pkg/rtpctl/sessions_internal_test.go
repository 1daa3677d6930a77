package rtpctl

import "testing"

// TestCounters: the totals line names kernel drops and SRTP failures only
// when there are some.
func TestCounters(t *testing.T) {
	for _, tc := range []struct {
		c    ngCounters
		want string
	}{
		{ngCounters{Packets: 3, Bytes: 480, Errors: 1}, "3 p, 480 b, 1 e"},
		{ngCounters{Packets: 3, KernelDrops: 2}, "3 p, 0 b, 0 e, 2 kernel drops"},
		{ngCounters{Packets: 3, SRTPFailures: 4}, "3 p, 0 b, 0 e, 4 SRTP failures"},
	} {
		if got := counters(tc.c); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}
