package rtpfwd

import (
	"testing"

	"github.com/rtpkit/rtpkit/pkg/codec"
	"github.com/rtpkit/rtpkit/pkg/fwd"
)

// TestSSRCMapsAgree: the transcoder's SSRC and the one RTCP is mapped to
// are the same, both ways.
func TestSSRCMapsAgree(t *testing.T) {
	for _, s := range []uint32{0, 1, 0x1234, 0xdeadbeef, 0xffffffff} {
		if codec.SSRC(s) != fwd.MapSSRC(s) || fwd.MapSSRC(fwd.MapSSRC(s)) != s {
			t.Fatalf("SSRC %#x: transcoder %#x, RTCP %#x", s, codec.SSRC(s), fwd.MapSSRC(s))
		}
	}
}
