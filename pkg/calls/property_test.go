package calls

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// sdpVariants are the SDP bodies the property test signals with: one or
// two media, a moved endpoint (new ports), a rejected media (port 0),
// rtcp-mux offered, IPv6, hold.
var sdpVariants = []string{
	offerSDP,
	answerSDP,
	strings.Replace(offerSDP, "6000", "6100", 1),
	strings.Replace(offerSDP, "m=video 6002", "m=video 0", 1),
	"v=0\r\no=- 3 3 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=rtcp-mux\r\n",
	"v=0\r\no=- 4 4 IN IP6 2001:db8::20\r\ns=-\r\nc=IN IP6 2001:db8::20\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
	"v=0\r\no=- 5 5 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendonly\r\n",
	"not an SDP",
}

// TestEngineProperties drives the engine with random sequences of offer,
// answer, re-INVITE, fork, delete (of a leg or of the call, with and
// without delay) and timer ticks, over a few calls and tags, and checks
// after every step that nothing leaks and nothing is half made: the pairs
// the fake portd has out are exactly those the calls' records name, no
// socket belongs to two streams, every call the engine has is in the store
// and every record in the store is a call the engine has.
func TestEngineProperties(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 23))
			ports := newFakePorts()
			store := &memStore{saved: map[string]nodestate.Call{}}
			now := time.Unix(1700000000, 0)
			e := newTestEngine(ports)
			e.cfg.Store = store
			e.now = func() time.Time { return now }
			e.cfg.Limits.MaxLegs = 4
			ctx := context.Background()
			calls := []string{"c0", "c1", "c2"}
			tags := []string{"A", "B", "C", "D", "E"}
			var log []string
			okOps, maxOut := 0, 0
			for step := range 400 {
				id := calls[rng.IntN(len(calls))]
				from, to := tags[rng.IntN(len(tags))], tags[rng.IntN(len(tags))]
				body := sdpVariants[rng.IntN(len(sdpVariants))]
				var op string
				var err error
				switch k := rng.IntN(10); {
				case k < 4:
					r := req("offer", id, from, "", body)
					if rng.IntN(3) == 0 {
						r.ToTag = to // a re-INVITE within the dialogue
					}
					op = fmt.Sprintf("offer %s %s>%s", id, from, r.ToTag)
					_, err = e.Offer(ctx, r)
				case k < 7:
					op = fmt.Sprintf("answer %s %s>%s", id, from, to)
					_, err = e.Answer(ctx, req("answer", id, from, to, body))
				case k < 9:
					r := req("delete", id, "", "", "")
					if rng.IntN(2) == 0 {
						r.FromTag = from
					}
					if rng.IntN(2) == 0 {
						r.ToTag = to
					}
					r.DeleteDelay = rng.IntN(2) * 5
					op = fmt.Sprintf("delete %s %s>%s delay %d", id, r.FromTag, r.ToTag, r.DeleteDelay)
					_, err = e.Delete(r)
				default:
					now = now.Add(time.Duration(rng.IntN(8)) * time.Second)
					op = fmt.Sprintf("tick to +%v", now.Sub(time.Unix(1700000000, 0)))
					e.Tick(now)
				}
				log = append(log, fmt.Sprintf("%d %s: %v", step, op, err))
				if err == nil && !strings.HasPrefix(op, "tick") {
					okOps++
				}
				maxOut = max(maxOut, ports.taken)
				if msg := checkEngine(e, store, ports, calls); msg != "" {
					t.Fatalf("after step %d (%s): %s\nlast steps:\n%s", step, op, msg, strings.Join(log[max(0, len(log)-12):], "\n"))
				}
			}
			t.Logf("%d requests succeeded, at most %d pairs out at once, %d freed in all", okOps, maxOut, ports.freed)
			// Ending every call gives every pair back.
			for _, id := range calls {
				_, _ = e.Delete(&Request{Command: "delete", CallID: id, DeleteDelay: 0})
			}
			if ports.taken != 0 || len(store.saved) != 0 {
				t.Fatalf("after deleting every call: %d pairs out, %d records left", ports.taken, len(store.saved))
			}
		})
	}
}

// checkEngine returns what is wrong with the engine's state, or "".
func checkEngine(e *Engine, store *memStore, ports *fakePorts, ids []string) string {
	seen := map[netip.AddrPort]string{}
	pairs := 0
	for _, id := range ids {
		rec, ok := e.Record(id)
		saved, stored := store.saved[id]
		switch {
		case ok != stored:
			return fmt.Sprintf("call %s: in the engine %v, in the store %v", id, ok, stored)
		case !ok:
			continue
		case len(saved.Legs) != len(rec.Legs):
			return fmt.Sprintf("call %s: the store has %d legs, the engine %d", id, len(saved.Legs), len(rec.Legs))
		}
		for _, l := range rec.Legs {
			for _, m := range l.Medias {
				for _, s := range m.Streams {
					if !s.Local.IsValid() {
						continue
					}
					where := fmt.Sprintf("%s/%s/%d", id, l.Tag, s.Component)
					if other, dup := seen[s.Local]; dup {
						return fmt.Sprintf("socket %s used by %s and %s", s.Local, other, where)
					}
					seen[s.Local] = where
					if s.Component == 1 {
						pairs++
					}
				}
			}
		}
	}
	if pairs != ports.taken {
		return fmt.Sprintf("%d pairs out at the fake portd, the calls name %d", ports.taken, pairs)
	}
	return ""
}
