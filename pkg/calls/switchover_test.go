package calls

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// foreignRecord makes a two-party call on another engine and returns its
// record as redis-sync would restore it here: foreign, owned by "other",
// from partition db:2, with the parties' learned endpoints.
func foreignRecord(t *testing.T, id string) nodestate.Call {
	t.Helper()
	store := &memStore{saved: map[string]nodestate.Call{}}
	o := newTestEngine(newFakePorts())
	o.cfg.Node, o.cfg.Store = "other", store
	if _, err := o.Offer(context.Background(), req("offer", id, "A", "", offerSDP)); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Answer(context.Background(), req("answer", id, "A", "B", answerSDP)); err != nil {
		t.Fatal(err)
	}
	r := store.saved[id]
	r.Foreign, r.Partition, r.Source = true, "db:2", nodestate.SourceRedis
	for i := range r.Legs {
		for j := range r.Legs[i].Medias {
			for k := range r.Legs[i].Medias[j].Streams {
				s := &r.Legs[i].Medias[j].Streams[k]
				s.Learned = netip.AddrPortFrom(netip.MustParseAddr("192.0.2.77"), s.Signalled.Port()+10000)
			}
		}
	}
	return r
}

// TestSignallingOnForeignCall: with active-switchover an offer or answer
// on a foreign call makes it this node's own; without it the call is
// changed but stays foreign. A failed request changes nothing.
func TestSignallingOnForeignCall(t *testing.T) {
	moved := strings.Replace(offerSDP, "6000", "6100", 1) // the caller's audio moves
	cases := []struct {
		name       string
		switchover bool
		request    *Request
		answer     bool
		outOfPorts bool
		wantOwn    bool
		wantErr    error
	}{
		{name: "re-offer, switchover off", request: req("offer", "c", "A", "B", offerSDP)},
		{name: "re-offer, switchover on", switchover: true, request: req("offer", "c", "A", "B", offerSDP), wantOwn: true},
		{name: "answer, switchover off", request: req("answer", "c", "A", "B", answerSDP), answer: true},
		{name: "answer, switchover on", switchover: true, request: req("answer", "c", "A", "B", answerSDP), answer: true, wantOwn: true},
		{name: "re-offer with a new endpoint, switchover off", request: req("offer", "c", "A", "B", moved)},
		{name: "re-offer with a new endpoint, switchover on", switchover: true, request: req("offer", "c", "A", "B", moved), wantOwn: true},
		{name: "failed re-offer, switchover on", switchover: true, request: req("offer", "c", "A", "B", moved), outOfPorts: true, wantErr: ErrOutOfPorts},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := foreignRecord(t, "c")
			ports := newFakePorts()
			store := &memStore{saved: map[string]nodestate.Call{}}
			e := newTestEngine(ports)
			e.cfg.Store, e.cfg.ActiveSwitchover = store, tc.switchover
			e.Load([]nodestate.Call{rec})
			if tc.outOfPorts {
				ports.limit = 0
			}
			var err error
			if tc.answer {
				_, err = e.Answer(context.Background(), tc.request)
			} else {
				_, err = e.Offer(context.Background(), tc.request)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if got := e.IsForeign("c"); got == tc.wantOwn {
				t.Fatalf("foreign %v, want %v", got, !tc.wantOwn)
			}
			if own, foreign := e.Counts(); (own == 1) != tc.wantOwn || own+foreign != 1 {
				t.Fatalf("counts own %d foreign %d", own, foreign)
			}
			r := e.mustRecord(t, "c")
			wantOwner := "other"
			if tc.wantOwn {
				wantOwner = "test"
			}
			if r.Owner != wantOwner || r.Foreign == tc.wantOwn || r.Partition != "db:2" || r.Source != "" {
				t.Fatalf("record owner %q foreign %v partition %q source %q; want owner %q", r.Owner, r.Foreign, r.Partition, r.Source, wantOwner)
			}
			saved, ok := store.saved["c"]
			if tc.wantErr != nil {
				if ok {
					t.Fatalf("a failed request wrote the call: %+v", saved)
				}
				return
			}
			// The change is written to node state, ownership included.
			if !ok || saved.Owner != wantOwner || saved.Foreign == tc.wantOwn {
				t.Fatalf("saved %+v (present %v)", saved, ok)
			}
		})
	}
}

// TestLoadUpdatesCall: loading a record of a call the engine has replaces
// its state in place (owner and foreign flag included); what the earlier
// owner learned survives the engine's writes until the party signals a new
// endpoint.
func TestLoadUpdatesCall(t *testing.T) {
	e := newTestEngine(newFakePorts())
	store := &memStore{saved: map[string]nodestate.Call{}}
	e.cfg.Store = store
	if _, err := e.Offer(context.Background(), req("offer", "c", "A", "", offerSDP)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Answer(context.Background(), req("answer", "c", "A", "B", answerSDP)); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		load        func() nodestate.Call
		offer       string // SDP of a re-offer from A after the load
		wantForeign bool
		wantOwner   string
		wantLearned bool // A's audio keeps the learned endpoint
	}{
		{name: "made foreign", wantForeign: true, wantOwner: "other", load: func() nodestate.Call {
			r := store.saved["c"]
			r.Foreign, r.Owner, r.Source = true, "other", nodestate.SourceRedis
			return r
		}},
		{name: "made own again, with learned endpoints", wantOwner: "test", wantLearned: true, offer: offerSDP, load: func() nodestate.Call {
			r := foreignRecord(t, "c")
			r.Foreign, r.Owner = false, "test"
			return r
		}},
		{name: "new endpoint drops what was learned", wantOwner: "test", offer: strings.Replace(offerSDP, "6000", "6100", 1), load: func() nodestate.Call {
			r := foreignRecord(t, "c")
			r.Foreign, r.Owner = false, "test"
			return r
		}},
	}
	for _, s := range steps {
		rec := s.load()
		e.Load([]nodestate.Call{rec})
		if s.offer != "" {
			if _, err := e.Offer(context.Background(), req("offer", "c", "A", "B", s.offer)); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		got := e.mustRecord(t, "c")
		if e.IsForeign("c") != s.wantForeign || e.IsOwn("c") == s.wantForeign || got.Owner != s.wantOwner || got.Foreign != s.wantForeign {
			t.Fatalf("%s: foreign %v owner %q", s.name, got.Foreign, got.Owner)
		}
		if n, _ := e.List(10); len(n) != 1 {
			t.Fatalf("%s: calls %v", s.name, n)
		}
		audio := got.Legs[0].Medias[0].Streams[0]
		if audio.Learned.IsValid() != s.wantLearned {
			t.Fatalf("%s: A's audio learned %v, signalled %v", s.name, audio.Learned, audio.Signalled)
		}
		if s.offer != "" && store.saved["c"].Legs[0].Medias[0].Streams[0].Learned != audio.Learned {
			t.Fatalf("%s: the written record's learned endpoint differs", s.name)
		}
		if s.wantLearned {
			st, err := e.Query(req("query", "c", "", "", ""))
			if err != nil || st.Tags[0].Medias[0].Streams[0].Endpoint != audio.Learned {
				t.Fatalf("%s: query shows %+v (%v), want the learned endpoint", s.name, st, err)
			}
		}
	}
}
