package ngctl

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/calls"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// record builds a two-party call record on 203.0.113.1:base.
func record(id, owner string, foreign bool, source string, base uint16) nodestate.Call {
	now := time.Now().UTC()
	ap := func(a string, p uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(a), p) }
	leg := func(id, peer int, tag string, port uint16, peerAddr string) nodestate.Leg {
		return nodestate.Leg{ID: id, Tag: tag, Peer: peer, Family: 4, SDP: true, Created: now, Medias: []nodestate.Media{{
			Index: 1, Type: "audio", Protocol: "RTP/AVP", Interface: "default", Direction: "sendrecv",
			PayloadTypes: []nodestate.PayloadType{{PT: 0, Encoding: "PCMU", Clock: 8000}},
			Streams: []nodestate.Stream{
				{Component: 1, Local: ap("203.0.113.1", port), Signalled: ap(peerAddr, 7000)},
				{Component: 2, Local: ap("203.0.113.1", port+1), Signalled: ap(peerAddr, 7001)},
			},
		}}}
	}
	return nodestate.Call{Schema: nodestate.CallSchema, ID: id, Owner: owner, Foreign: foreign, Source: source,
		Created: now, LastSignal: now, Legs: []nodestate.Leg{leg(0, 1, "A", base, "198.51.100.5"), leg(1, 0, "B", base+2, "198.51.100.6")}}
}

// TestFollowRecords: ng-ctl loads every record at start, then follows what
// redis-sync writes whether the call is own or foreign, and skips its own
// writes.
func TestFollowRecords(t *testing.T) {
	srv := testutil.StartNATS(t)
	conn := testutil.Connect(t, srv.URL(), "n1", "ng-ctl-test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := testutil.Logger(t)
	states := newStateStore(nil, log)
	store, err := nodestate.Open(ctx, conn, nodestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	table := nodestate.Calls(store)
	states.calls = table
	put := func(c nodestate.Call) {
		t.Helper()
		if _, err := table.Put(ctx, c.ID, c); err != nil {
			t.Fatal(err)
		}
	}
	// Present before ng-ctl starts.
	put(record("own-before", "n1", false, "", 31000))
	put(record("foreign-before", "n2", true, nodestate.SourceRedis, 31010))

	e := calls.New(calls.Config{Node: "n1", Ports: &seqPorts{}, Store: states, MaxSessions: -1, Log: log,
		Timers: calls.Timers{Timeout: 60, SilentTimeout: 3600, OfferTimeout: 3600, DeleteDelay: 30}})
	states.current = e.Record
	go states.run(ctx)
	n, err := followRecords(ctx, table, e, states.echo, 10*time.Second, log)
	if err != nil || n != 2 {
		t.Fatalf("loaded %d calls (%v), want 2", n, err)
	}
	if !e.IsOwn("own-before") || !e.IsForeign("foreign-before") {
		t.Fatalf("at start: own-before own %v, foreign-before foreign %v", e.IsOwn("own-before"), e.IsForeign("foreign-before"))
	}
	// A call made here: ng-ctl writes its record (and must not reload it).
	sdp := "v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 7300 RTP/AVP 0\r\n"
	if _, err := e.Offer(ctx, &calls.Request{CallID: "made-here", FromTag: "A", SDP: []byte(sdp), Flags: map[string]bool{},
		Replace: map[string]bool{}, RTCPMux: map[string]bool{}, Supports: map[string]bool{}}); err != nil {
		t.Fatal(err)
	}

	type state int
	const (
		absent state = iota
		own
		foreign
	)
	stateOf := func(id string) state {
		switch {
		case e.IsOwn(id):
			return own
		case e.IsForeign(id):
			return foreign
		}
		return absent
	}
	steps := []struct {
		name  string
		write func()
		id    string
		want  state
		owner string
	}{
		{name: "redis-sync makes an own call foreign (standby, taken over)", id: "made-here", want: foreign, owner: "n2",
			write: func() {
				r, _ := e.Record("made-here")
				r.Owner, r.Foreign, r.Source, r.Partition = "n2", true, nodestate.SourceRedis, "db:2"
				put(r)
			}},
		{name: "redis-sync restores an unknown call as own (whole-node restart)", id: "restored", want: own, owner: "n1",
			write: func() { put(record("restored", "n1", false, nodestate.SourceRedis, 31020)) }},
		{name: "redis-sync makes a foreign call own (rtpctl active)", id: "foreign-before", want: own, owner: "n1",
			write: func() { put(record("foreign-before", "n1", false, nodestate.SourceRedis, 31010)) }},
		{name: "a record not from redis-sync is ng-ctl's own write: skipped", id: "own-before", want: own, owner: "n1",
			write: func() { put(record("own-before", "n9", true, "", 31000)) }},
		{name: "the same for a call the engine does not have (ended since)", id: "ended", want: absent,
			write: func() { put(record("ended", "n2", true, "", 31030)) }},
		{name: "redis-sync makes own-before foreign", id: "own-before", want: foreign, owner: "n3",
			write: func() { put(record("own-before", "n3", true, nodestate.SourceRedis, 31000)) }},
		{name: "redis-sync deletes a foreign call", id: "own-before", want: absent,
			write: func() {
				if err := table.Delete(ctx, "own-before", 0); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for i, s := range steps {
		s.write()
		// Changes are applied in order: once this marker is in, so is the step.
		marker := "marker-" + string(rune('a'+i))
		put(record(marker, "n2", true, nodestate.SourceRedis, 32000))
		deadline := time.Now().Add(10 * time.Second)
		for !e.IsForeign(marker) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the marker record was never loaded", s.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if got := stateOf(s.id); got != s.want {
			t.Fatalf("%s: %s is %d, want %d", s.name, s.id, got, s.want)
		}
		if s.want == absent {
			continue
		}
		r, _ := e.Record(s.id)
		if r.Owner != s.owner {
			t.Fatalf("%s: owner %q, want %q", s.name, r.Owner, s.owner)
		}
	}
	// The call restored as own answers like one made here.
	st, err := e.Query(&calls.Request{CallID: "restored"})
	if err != nil || len(st.Tags) != 2 || st.Tags[0].Tag != "A" || st.Tags[0].Medias[0].Streams[0].LocalPort != 31020 {
		t.Fatalf("query of the restored call: %+v %v", st, err)
	}
	if _, err := e.Answer(ctx, &calls.Request{CallID: "restored", FromTag: "A", ToTag: "B", SDP: []byte(sdp), Flags: map[string]bool{},
		Replace: map[string]bool{}, RTCPMux: map[string]bool{}, Supports: map[string]bool{}}); err != nil {
		t.Fatalf("answer on the restored call: %v", err)
	}
}
