package ngctl

import (
	"strconv"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

// BenchmarkCycle is ng-ctl's own work for one call's offer, answer and
// delete (decoding, the call engine, SDP, the reply), without the bus,
// portd or the workers.
func BenchmarkCycle(b *testing.B) {
	p := newTestProtocol()
	const offerSDP = "v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 7300 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
	const answerSDP = "v=0\r\no=- 2 2 IN IP4 198.51.100.6\r\ns=-\r\nc=IN IP4 198.51.100.6\r\nt=0 0\r\nm=audio 7400 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
	msg := func(kv ...string) string {
		d := bencode.NewDict()
		for i := 0; i+1 < len(kv); i += 2 {
			d.Set(kv[i], bencode.Str(kv[i+1]))
		}
		d.Set("flags", bencode.Strs("trust-address"))
		d.Set("replace", bencode.Strs("origin"))
		return string(bencode.Encode(d))
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		id := "bench-" + strconv.Itoa(i)
		handle(p, msg("command", "offer", "call-id", id, "from-tag", "a", "sdp", offerSDP))
		handle(p, msg("command", "answer", "call-id", id, "from-tag", "a", "to-tag", "b", "sdp", answerSDP))
		handle(p, msg("command", "delete", "call-id", id, "from-tag", "a"))
	}
}
