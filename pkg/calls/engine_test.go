package calls

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

const offerSDP = "v=0\r\no=- 1 1 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\nm=video 6002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
const answerSDP = "v=0\r\no=- 2 2 IN IP4 203.0.113.50\r\ns=-\r\nc=IN IP4 203.0.113.50\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\nm=video 7002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"

func req(cmd, call, from, to, body string) *Request {
	return &Request{Command: cmd, CallID: call, FromTag: from, ToTag: to, SDP: []byte(body), DeleteDelay: -1,
		Flags: map[string]bool{}, Replace: map[string]bool{}, RTCPMux: map[string]bool{}, Supports: map[string]bool{}}
}

// memStore records what the engine persists.
type memStore struct{ saved map[string]nodestate.Call }

func (m *memStore) Save(c nodestate.Call) { m.saved[c.ID] = c }
func (m *memStore) Remove(id string)      { delete(m.saved, id) }

func TestOutOfPortsLeavesNothing(t *testing.T) {
	ports := newFakePorts()
	ports.limit = 3 // the offer needs 4 pairs (two medias, both sides)
	store := &memStore{saved: map[string]nodestate.Call{}}
	e := newTestEngine(ports)
	e.cfg.Store = store
	_, err := e.Offer(context.Background(), req("offer", "c1", "A", "", offerSDP))
	if !errors.Is(err, ErrOutOfPorts) || Reason(err) != "Ran out of ports" {
		t.Fatalf("err = %v", err)
	}
	if own, _ := e.Counts(); own != 0 || ports.taken != 0 || len(store.saved) != 0 {
		t.Fatalf("left behind: %d calls, %d pairs taken, %d records", own, ports.taken, len(store.saved))
	}
	// A failed re-offer of an existing call leaves the call as it was.
	ports.limit = 100
	if _, err := e.Offer(context.Background(), req("offer", "c2", "A", "", offerSDP)); err != nil {
		t.Fatal(err)
	}
	before := e.mustRecord(t, "c2")
	ports.limit = ports.taken
	moved := strings.Replace(offerSDP, "6000", "6100", 1) // a new endpoint needs new ports
	if _, err := e.Offer(context.Background(), req("offer", "c2", "A", "", moved)); !errors.Is(err, ErrOutOfPorts) {
		t.Fatalf("re-offer: %v", err)
	}
	if after := e.mustRecord(t, "c2"); !sameRecord(before, after) {
		t.Fatalf("call changed by a failed re-offer:\n%+v\n%+v", before, after)
	}
}

func (e *Engine) mustRecord(t *testing.T, id string) nodestate.Call {
	t.Helper()
	r, ok := e.Record(id)
	if !ok {
		t.Fatalf("no call %q", id)
	}
	return r
}

func sameRecord(a, b nodestate.Call) bool {
	return len(a.Legs) == len(b.Legs) && a.Legs[1].Medias[0].Streams[0].Local == b.Legs[1].Medias[0].Streams[0].Local
}

func TestSessionLimit(t *testing.T) {
	e := newTestEngine(newFakePorts())
	e.SetMaxSessions(1)
	if _, err := e.Offer(context.Background(), req("offer", "c1", "A", "", offerSDP)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Offer(context.Background(), req("offer", "c2", "A", "", offerSDP)); !errors.Is(err, ErrSessionLimit) {
		t.Fatalf("without supports: %v", err)
	}
	r := req("offer", "c2", "A", "", offerSDP)
	r.Supports["load limit"] = true
	var ll *LoadLimitError
	if _, err := e.Offer(context.Background(), r); !errors.As(err, &ll) {
		t.Fatalf("with supports load limit: %v", err)
	}
	// An existing call is not limited.
	if _, err := e.Offer(context.Background(), req("offer", "c1", "A", "", offerSDP)); err != nil {
		t.Fatalf("re-offer of an existing call: %v", err)
	}
	if st := e.Stats(); st.Rejected != 2 || st.Managed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRestartFromRecord: a new engine loaded from the node-state record
// answers with the ports the first engine chose.
func TestRestartFromRecord(t *testing.T) {
	store := &memStore{saved: map[string]nodestate.Call{}}
	e1 := newTestEngine(newFakePorts())
	e1.cfg.Store = store
	if _, err := e1.Offer(context.Background(), req("offer", "c1", "A", "", offerSDP)); err != nil {
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
}

// clone copies an engine with its calls (test helper for comparing paths).
func (e *Engine) clone() *Engine {
	n := New(e.cfg)
	n.cfg.Ports = newFakePorts()
	for id, en := range e.calls {
		n.calls[id] = &entry{c: en.c.clone()}
	}
	return n
}

func TestTimers(t *testing.T) {
	now := time.Unix(1700000000, 0)
	e := newTestEngine(newFakePorts())
	e.now = func() time.Time { return now }
	e.SetTimers(Timers{Timeout: 60, SilentTimeout: 3600, OfferTimeout: 300, FinalTimeout: 0, DeleteDelay: 30})
	mustOffer := func(id string) {
		if _, err := e.Offer(context.Background(), req("offer", id, "A", "", offerSDP)); err != nil {
			t.Fatal(err)
		}
	}
	mustOffer("unanswered")
	mustOffer("answered")
	if _, err := e.Answer(context.Background(), req("answer", "answered", "A", "B", answerSDP)); err != nil {
		t.Fatal(err)
	}
	mustOffer("deleted")
	if _, err := e.Delete(req("delete", "deleted", "", "", "")); err != nil {
		t.Fatal(err)
	}
	foreign := nodestate.Call{Schema: 1, ID: "foreign", Owner: "other", Foreign: true, Created: now, LastSignal: now,
		Legs: []nodestate.Leg{{ID: 0, Tag: "x", Peer: -1, SDP: true, Medias: []nodestate.Media{{Index: 1, Type: "audio",
			Streams: []nodestate.Stream{{Component: 1, Local: mustAP("203.0.113.1:31000")}}}}}}}
	e.Load([]nodestate.Call{foreign})
	has := func(id string) bool { _, ok := e.Record(id); return ok }

	e.Tick(now.Add(31 * time.Second))
	if has("deleted") {
		t.Fatal("delete-delay passed but the call is still there")
	}
	e.Tick(now.Add(61 * time.Second))
	if has("answered") || !has("unanswered") || !has("foreign") {
		t.Fatalf("after 61 s: answered %v (want gone), unanswered %v, foreign %v", has("answered"), has("unanswered"), has("foreign"))
	}
	e.Tick(now.Add(301 * time.Second))
	if has("unanswered") || !has("foreign") {
		t.Fatal("offer-timeout: the unanswered call should be gone, the foreign one kept")
	}
	e.SetTimers(Timers{Timeout: 60, FinalTimeout: 400})
	e.Tick(now.Add(401 * time.Second))
	if has("foreign") {
		t.Fatal("final-timeout applies to foreign calls")
	}
	if st := e.Stats(); st.Timeout != 1 || st.OfferTimeout != 1 || st.FinalTimeout != 1 || st.Regular != 1 {
		t.Fatalf("end reasons %+v", st)
	}
}

func mustAP(s string) netipAddrPort { return mustParseAddrPort(s) }

func TestDroppedPairsAreFreed(t *testing.T) {
	ports := newFakePorts()
	e := newTestEngine(ports)
	if _, err := e.Offer(context.Background(), req("offer", "f1", "A", "", offerSDP)); err != nil {
		t.Fatal(err)
	}
	if ports.freed != 0 || ports.taken != 4 {
		t.Fatalf("after offer: freed %d taken %d", ports.freed, ports.taken)
	}
	// A new endpoint for the audio: the callee gets a new pair, the old one is freed.
	moved := strings.Replace(offerSDP, "6000", "6100", 1)
	if _, err := e.Offer(context.Background(), req("offer", "f1", "A", "", moved)); err != nil {
		t.Fatal(err)
	}
	if ports.freed != 1 || ports.taken != 4 {
		t.Fatalf("after re-offer: freed %d taken %d", ports.freed, ports.taken)
	}
	r := req("delete", "f1", "", "", "")
	r.DeleteDelay = 0
	if _, err := e.Delete(r); err != nil {
		t.Fatal(err)
	}
	if ports.freed != 5 || ports.taken != 0 {
		t.Fatalf("after delete: freed %d taken %d", ports.freed, ports.taken)
	}
	// A delete by tag that ends the call frees every pair too.
	if _, err := e.Offer(context.Background(), req("offer", "f2", "A", "", offerSDP)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Answer(context.Background(), req("answer", "f2", "A", "B", answerSDP)); err != nil {
		t.Fatal(err)
	}
	r = req("delete", "f2", "A", "", "")
	r.DeleteDelay = 0
	if _, err := e.Delete(r); err != nil {
		t.Fatal(err)
	}
	if ports.taken != 0 {
		t.Fatalf("after delete by tag: %d pairs still taken", ports.taken)
	}
}

// TestActivityKeepsCallAlive: packets reported by the workers count as
// activity, and the media timers wait a grace period after ng-ctl starts.
func TestActivityKeepsCallAlive(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	now := t0
	e := newTestEngine(newFakePorts())
	e.now = func() time.Time { return now }
	e.SetTimers(Timers{Timeout: 60, SilentTimeout: 3600, OfferTimeout: 3600})
	if _, err := e.Offer(context.Background(), req("offer", "m1", "A", "", offerSDP)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Answer(context.Background(), req("answer", "m1", "A", "B", answerSDP)); err != nil {
		t.Fatal(err)
	}
	lastPacket := t0.Add(50 * time.Second)
	e.SetActivity(func(netip.AddrPort) (Observed, bool) {
		return Observed{LastPacket: lastPacket, Packets: 100, Bytes: 17200}, true
	}, 3*time.Second)
	has := func() bool { _, ok := e.Record("m1"); return ok }
	e.Tick(t0.Add(2 * time.Second)) // inside the grace period: nothing judged
	e.Tick(t0.Add(61 * time.Second))
	if !has() {
		t.Fatal("a call with packets 11 s ago ended at the signalling timeout")
	}
	st, err := e.Query(req("query", "m1", "", "", ""))
	if err != nil || st.TotalRTP.Packets == 0 {
		t.Fatalf("query totals %+v, %v", st, err)
	}
	e.Tick(t0.Add(111 * time.Second))
	if has() {
		t.Fatal("60 s after the last packet the call should have timed out")
	}
}

// TestNoNewsIsNotNoMedia: while the worker holding a call's streams is not
// heard from, the media timers do not judge the call; once news resumes,
// silence counts from the resumption.
func TestNoNewsIsNotNoMedia(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	lastPacket := t0.Add(10 * time.Second)
	for _, c := range []struct {
		name         string
		heard, since time.Time // worker news
		known        bool      // any worker heard at all
		at           time.Time // tick
		wantEnded    bool
	}{
		{"fresh news, media stopped a timeout ago", t0.Add(70 * time.Second), t0, true, t0.Add(70 * time.Second), true},
		{"worker silent past the limit", t0.Add(60 * time.Second), t0, true, t0.Add(71 * time.Second), false},
		{"worker silent within the limit, news shows a timeout of silence", t0.Add(70 * time.Second), t0, true, t0.Add(72 * time.Second), true},
		{"worker silent within the limit, news shows less", t0.Add(69 * time.Second), t0, true, t0.Add(71 * time.Second), false},
		{"news resumed 30 s ago", t0.Add(300 * time.Second), t0.Add(270 * time.Second), true, t0.Add(300 * time.Second), false},
		{"news resumed a timeout ago", t0.Add(331 * time.Second), t0.Add(270 * time.Second), true, t0.Add(331 * time.Second), true},
		{"no worker heard at all", time.Time{}, time.Time{}, false, t0.Add(71 * time.Second), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEngine(newFakePorts())
			e.now = func() time.Time { return t0 }
			e.SetTimers(Timers{Timeout: 60, SilentTimeout: 3600, OfferTimeout: 3600})
			if _, err := e.Offer(context.Background(), req("offer", "m1", "A", "", offerSDP)); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Answer(context.Background(), req("answer", "m1", "A", "B", answerSDP)); err != nil {
				t.Fatal(err)
			}
			e.SetActivity(func(netip.AddrPort) (Observed, bool) { return Observed{LastPacket: lastPacket, Packets: 5}, true }, 0)
			e.SetNews(func(netip.AddrPort) (time.Time, time.Time, bool) { return c.heard, c.since, c.known }, 3*time.Second)
			e.Tick(c.at)
			if _, ok := e.Record("m1"); ok == c.wantEnded {
				t.Fatalf("call present %v after tick at +%v, want ended %v", ok, c.at.Sub(t0), c.wantEnded)
			}
		})
	}
}

// TestOriginPinsSurviveRestart: what replace pinned for a party (username,
// session id, session name) and the version it was last told are in the
// call record, so an ng-ctl restarted from it (or a standby node) goes on
// with them instead of seeding them again from the next SDP.
func TestOriginPinsSurviveRestart(t *testing.T) {
	store := &memStore{saved: map[string]nodestate.Call{}}
	e1 := newTestEngine(newFakePorts())
	e1.cfg.Store = store
	pinned := func(body string) *Request {
		r := req("offer", "c1", "A", "", body)
		r.Replace = map[string]bool{"origin-full": true, "session-name": true}
		return r
	}
	if _, err := e1.Offer(context.Background(), pinned(offerSDP)); err != nil {
		t.Fatal(err)
	}
	rec := store.saved["c1"]
	// The same media with another o= and s=, and one more video format: a
	// change, so the version goes up by one from the first offer's.
	next := strings.NewReplacer("o=- 1 1 IN IP4", "o=bob 77 9 IN IP4", "s=-", "s=other", "VP8/90000", "VP8/90000\r\na=fmtp:96 max-fr=30").Replace(offerSDP)
	want, err := e1.clone().Offer(context.Background(), pinned(next))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(want), "o=- 1 2 IN IP4 ") || !strings.Contains(string(want), "\r\ns=-\r\n") {
		t.Fatalf("second offer's SDP:\n%s", want)
	}
	if o := rec.Legs[len(rec.Legs)-1].Origin; o == nil || o.Pinned == 0 || o.Version != 1 {
		t.Fatalf("receiver's origin in the record: %+v", o)
	}
	e2 := newTestEngine(newFakePorts())
	e2.Load([]nodestate.Call{rec})
	got, err := e2.Offer(context.Background(), pinned(next))
	if err != nil || string(got) != string(want) {
		t.Fatalf("offer after restart:\n%s\nwant\n%s\n(err %v)", got, want, err)
	}
}

// TestROCsKeptInRecord: the SRTP rollover counters a worker reports go
// into the call record when they rise, not when they stay or fall, and
// only for SRTP medias.
func TestROCsKeptInRecord(t *testing.T) {
	store := &memStore{saved: map[string]nodestate.Call{}}
	e := newTestEngine(newFakePorts())
	e.cfg.Store = store
	r := req("offer", "r1", "A", "", offerSDP)
	r.TransportProtocol = "RTP/SAVP" // B speaks SRTP, A plain
	if _, err := e.Offer(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	rocs := map[uint32]uint32{}
	e.SetActivity(func(netip.AddrPort) (Observed, bool) { return Observed{SRTPInROC: rocs[0], SRTPOutROC: rocs[1]}, true }, 0)
	srtpROC := func() (in, out uint32) {
		for _, l := range store.saved["r1"].Legs {
			for _, m := range l.Medias {
				if len(m.SDESOut) > 0 && m.Type == "audio" {
					return m.SRTPInROC, m.SRTPOutROC
				}
			}
		}
		return 0, 0
	}
	rocs[0], rocs[1] = 2, 3
	e.Tick(time.Unix(1700000001, 0))
	if in, out := srtpROC(); in != 2 || out != 3 {
		t.Fatalf("record ROCs %d/%d, want 2/3", in, out)
	}
	for _, l := range store.saved["r1"].Legs {
		for _, m := range l.Medias {
			if len(m.SDESOut) == 0 && (m.SRTPInROC != 0 || m.SRTPOutROC != 0) {
				t.Errorf("a plain media got ROCs %d/%d", m.SRTPInROC, m.SRTPOutROC)
			}
		}
	}
	rocs[0], rocs[1] = 1, 1 // a worker that restarted reports less: kept
	e.Tick(time.Unix(1700000002, 0))
	if in, out := srtpROC(); in != 2 || out != 3 {
		t.Fatalf("record ROCs went down to %d/%d", in, out)
	}
}

// TestOSRTPRejectLeavesBothPlain: an OSRTP offer answered without keys
// leaves no key in the record on either side, so the workers forward
// plain RTP both ways (rtpengine's "OSRTP offer, reject").
func TestOSRTPRejectLeavesBothPlain(t *testing.T) {
	store := &memStore{saved: map[string]nodestate.Call{}}
	e := newTestEngine(newFakePorts())
	e.cfg.Store = store
	offer := strings.Replace(offerSDP, "m=audio 6000 RTP/AVP 0\r\n",
		"m=audio 6000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:Qk0TvVeyfqfjFd/YebnyyklqSEhJntpVKV1KAhHa\r\n", 1)
	if offer == offerSDP {
		t.Fatal("the test's offer has no audio line to add keys to")
	}
	if _, err := e.Offer(context.Background(), req("offer", "o1", "A", "", offer)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Answer(context.Background(), req("answer", "o1", "A", "B", answerSDP)); err != nil {
		t.Fatal(err)
	}
	for _, l := range store.saved["o1"].Legs {
		for _, m := range l.Medias {
			if len(m.SDESIn) > 0 || len(m.SDESOut) > 0 {
				t.Errorf("leg %s %s media keeps keys: %d in, %d out", l.Tag, m.Type, len(m.SDESIn), len(m.SDESOut))
			}
		}
	}
}

// TestActivityOfAnotherCallIgnored: a worker's report about one of the
// call's sockets made while the socket belonged to another call (a port
// handed on before the worker heard the old call end) does not count for
// this call; one made for it does.
func TestActivityOfAnotherCallIgnored(t *testing.T) {
	e := newTestEngine(newFakePorts())
	if _, err := e.Offer(context.Background(), req("offer", "mine", "A", "", offerSDP)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		call    string
		counted bool
	}{{"earlier", false}, {"mine", true}, {"", true}} {
		e.SetActivity(func(netip.AddrPort) (Observed, bool) {
			return Observed{Call: tc.call, Packets: 7, SRTPFailures: 3}, true
		}, 0)
		st, err := e.Query(req("query", "mine", "", "", ""))
		if err != nil {
			t.Fatal(err)
		}
		if counted := st.TotalRTP.Packets != 0 || st.TotalRTP.SRTPFailures != 0; counted != tc.counted {
			t.Errorf("report for call %q: %d packets, %d SRTP failures in the totals, want counted %v", tc.call, st.TotalRTP.Packets, st.TotalRTP.SRTPFailures, tc.counted)
		}
	}
}
