package calls

import (
	"context"
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// TestRTCPMuxRecord: the record rtp-fwd forwards by says a party muxes
// exactly when its SDP from us says so (golden cases 51-57 show the SDP):
// with demux or accept the offerer's mux is accepted whatever the answerer
// does, also when the answer reaches an engine restarted from the record
// between offer and answer; with require or offer an offerer that did not
// offer mux does not mux although the answerer does.
func TestRTCPMuxRecord(t *testing.T) {
	const audioA = "v=0\r\no=- 1 1 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
	const audioB = "v=0\r\no=- 2 2 IN IP4 203.0.113.50\r\ns=-\r\nc=IN IP4 203.0.113.50\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
	const mux = "a=rtcp-mux\r\n"
	for _, tc := range []struct {
		flag             string
		aMux, bMux       bool
		wantA, wantB     bool // RTCPMux in the record after the answer
		aSingle, bSingle bool // the party's sockets are one port
	}{
		{flag: "demux", aMux: true, wantA: true, aSingle: true},
		{flag: "accept", aMux: true, wantA: true, aSingle: true},
		{flag: "demux", aMux: true, bMux: true, wantA: true, wantB: true, aSingle: true},
		{flag: "", aMux: true, wantA: false},
		{flag: "reject", aMux: true, bMux: true, wantA: false, wantB: true},
		{flag: "require", bMux: true, wantA: false, wantB: true, bSingle: true},
		{flag: "offer", bMux: true, wantA: false, wantB: true},
	} {
		name := tc.flag
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			offerSDP, answerSDP := audioA, audioB
			if tc.aMux {
				offerSDP += mux
			}
			if tc.bMux {
				answerSDP += mux
			}
			store := &memStore{saved: map[string]nodestate.Call{}}
			e1 := newTestEngine(newFakePorts())
			e1.cfg.Store = store
			o := req("offer", "c1", "A", "", offerSDP)
			if tc.flag != "" {
				o.RTCPMux[tc.flag] = true
			}
			if _, err := e1.Offer(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			want, err := e1.clone().Answer(context.Background(), req("answer", "c1", "A", "B", answerSDP))
			if err != nil {
				t.Fatal(err)
			}
			e2 := newTestEngine(newFakePorts())
			e2.Load([]nodestate.Call{store.saved["c1"]})
			got, err := e2.Answer(context.Background(), req("answer", "c1", "A", "B", answerSDP))
			if err != nil || string(got) != string(want) {
				t.Fatalf("answer after restart:\n%s\nwant\n%s\n(err %v)", got, want, err)
			}
			if told := strings.Contains(string(got), "\r\na=rtcp-mux\r\n"); told != tc.wantA {
				t.Errorf("a=rtcp-mux in the answer to A: %v, want %v:\n%s", told, tc.wantA, got)
			}
			for _, e := range []*Engine{e1, e2} {
				if e == e1 {
					if _, err := e1.Answer(context.Background(), req("answer", "c1", "A", "B", answerSDP)); err != nil {
						t.Fatal(err)
					}
				}
				r := e.mustRecord(t, "c1")
				a, b := r.Legs[0].Medias[0], r.Legs[1].Medias[0]
				if a.RTCPMux != tc.wantA || b.RTCPMux != tc.wantB {
					t.Errorf("record: A muxes %v, B muxes %v; want %v, %v", a.RTCPMux, b.RTCPMux, tc.wantA, tc.wantB)
				}
				if got := len(a.Streams) == 1; got != tc.aSingle {
					t.Errorf("A has one socket: %v, want %v", got, tc.aSingle)
				}
				if got := len(b.Streams) == 1; got != tc.bSingle {
					t.Errorf("B has one socket: %v, want %v", got, tc.bSingle)
				}
			}
		})
	}
}
