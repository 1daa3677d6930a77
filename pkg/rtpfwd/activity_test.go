package rtpfwd

import (
	"net/netip"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
)

// TestSplitActivity: a report is cut into messages of at most
// MaxStreamsPerMessage streams, numbered 1..Parts, every stream once; an
// empty report is still one message.
func TestSplitActivity(t *testing.T) {
	const most = fwdapi.MaxStreamsPerMessage
	for _, c := range []struct {
		streams, parts int
	}{{0, 1}, {1, 1}, {most, 1}, {most + 1, 2}, {12000, (12000 + most - 1) / most}} {
		in := make([]fwdapi.StreamActivity, c.streams)
		for i := range in {
			in[i].Local = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(i+1))
		}
		msgs := splitActivity("w", 7, true, in)
		if len(msgs) != c.parts {
			t.Fatalf("%d streams: %d messages, want %d", c.streams, len(msgs), c.parts)
		}
		seen := 0
		for i, m := range msgs {
			if m.Worker != "w" || m.Seq != 7 || !m.Full || m.Part != i+1 || m.Parts != c.parts || len(m.Streams) > most {
				t.Fatalf("%d streams: message %d is %+v (%d streams)", c.streams, i, m, len(m.Streams))
			}
			if m.Complete() != (i == len(msgs)-1) {
				t.Fatalf("%d streams: message %d Complete %v", c.streams, i, m.Complete())
			}
			for _, s := range m.Streams {
				if int(s.Local.Port()) != seen+1 {
					t.Fatalf("%d streams: stream %v out of order at %d", c.streams, s.Local, seen)
				}
				seen++
			}
		}
		if seen != c.streams {
			t.Fatalf("%d streams: %d sent", c.streams, seen)
		}
	}
}
