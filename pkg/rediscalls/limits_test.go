package rediscalls

import (
	"errors"
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// TestCheckLimits: records at the caps pass, one past any cap is
// ErrOverLimit.
func TestCheckLimits(t *testing.T) {
	call := func(legs, medias, streams, pts int) nodestate.Call {
		c := nodestate.Call{ID: "c", Owner: "n"}
		for range legs {
			l := nodestate.Leg{}
			for range medias {
				l.Medias = append(l.Medias, nodestate.Media{Streams: make([]nodestate.Stream, streams), PayloadTypes: make([]nodestate.PayloadType, pts)})
			}
			c.Legs = append(c.Legs, l)
		}
		return c
	}
	long := strings.Repeat("x", MaxIDLen+1)
	cases := []struct {
		name string
		c    nodestate.Call
		over bool
	}{
		{"ordinary", call(2, 1, 2, 3), false},
		{"at every cap", call(MaxLegs, MaxMedias/MaxLegs, MaxStreams, MaxPayloadTypes), false},
		{"legs", call(MaxLegs+1, 0, 0, 0), true},
		{"medias over legs", call(2, MaxMedias/2+1, 0, 0), true},
		{"streams", call(1, 1, MaxStreams+1, 0), true},
		{"payload types", call(1, 1, 2, MaxPayloadTypes+1), true},
		{"id", func() nodestate.Call { c := call(1, 1, 2, 1); c.ID = long; return c }(), true},
		{"owner", func() nodestate.Call { c := call(1, 1, 2, 1); c.Owner = strings.Repeat("n", MaxOwnerLen+1); return c }(), true},
		{"tag", func() nodestate.Call { c := call(1, 1, 2, 1); c.Legs[0].Tag = long; return c }(), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckLimits(&tc.c)
			if got := errors.Is(err, ErrOverLimit); got != tc.over {
				t.Fatalf("over = %v (%v), want %v", got, err, tc.over)
			}
		})
	}
}
