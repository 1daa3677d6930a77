package ngctl

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/calls"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// TestCtlSessionsTerminateSettings: the operator's endpoints over an engine
// with own calls and a foreign one restored from Redis.
func TestCtlSessionsTerminateSettings(t *testing.T) {
	e := calls.New(calls.Config{Node: "t", Ports: &seqPorts{}, MaxSessions: -1, Log: slog.New(slog.DiscardHandler),
		Timers: calls.Timers{Timeout: 60, SilentTimeout: 3600, OfferTimeout: 3600, DeleteDelay: 30}})
	p := newProtocol(e, slog.New(slog.DiscardHandler))
	offer := func(id string) {
		t.Helper()
		doc := `{"command":"offer","call-id":"` + id + `","from-tag":"A","sdp":"v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 7300 RTP/AVP 0\r\n"}`
		if r := handle(p, doc); !strings.Contains(r, `"result":"ok"`) {
			t.Fatalf("offer %s: %s", id, r)
		}
	}
	offer("own1")
	offer("own2")
	e.Load([]nodestate.Call{{Schema: nodestate.CallSchema, ID: "far1", Owner: "other", Foreign: true, Partition: "db:3",
		Created: time.Now().Add(-time.Hour), LastSignal: time.Now().Add(-time.Hour),
		Legs: []nodestate.Leg{{ID: 0, Tag: "X", Peer: 1}, {ID: 1, Tag: "Y", Peer: 0}}}})
	c := &ctl{engine: e}
	ctx := context.Background()

	ids := func(which string) []string {
		t.Helper()
		rep, err := c.sessions(ctx, ngapi.SessionsRequest{Which: which})
		if err != nil {
			t.Fatalf("sessions %q: %v", which, err)
		}
		var out []string
		for _, s := range rep.Sessions {
			out = append(out, s.ID)
		}
		return out
	}
	for _, tt := range []struct {
		which string
		want  []string
	}{
		{"", []string{"far1", "own1", "own2"}}, // oldest first
		{ngapi.WhichAll, []string{"far1", "own1", "own2"}},
		{ngapi.WhichOwn, []string{"own1", "own2"}},
		{ngapi.WhichForeign, []string{"far1"}},
	} {
		if got := ids(tt.which); !slices.Equal(got, tt.want) {
			t.Errorf("sessions %q = %v, want %v", tt.which, got, tt.want)
		}
	}
	rep, err := c.sessions(ctx, ngapi.SessionsRequest{Call: "far1"})
	if err != nil || len(rep.Sessions) != 1 {
		t.Fatalf("sessions of far1: %v %+v", err, rep)
	}
	if s := rep.Sessions[0]; !s.Foreign || s.Owner != "other" || s.Partition != "db:3" || !slices.Equal(s.Tags, []string{"X", "Y"}) || !s.DeleteAt.IsZero() {
		t.Errorf("far1: %+v", s)
	}
	if _, err := c.sessions(ctx, ngapi.SessionsRequest{Call: "nope"}); !bus.IsCode(err, bus.CodeNotFound) {
		t.Errorf("sessions of an unknown call: %v", err)
	}
	if _, err := c.sessions(ctx, ngapi.SessionsRequest{Which: "mine"}); !bus.IsCode(err, bus.CodeBadRequest) {
		t.Errorf("sessions which=mine: %v", err)
	}

	// terminate: one call, a missing one, foreign ones, then the rest.
	if _, err := c.terminate(ctx, ngapi.TerminateRequest{Call: "nope"}); !bus.IsCode(err, bus.CodeNotFound) {
		t.Errorf("terminate nope: %v", err)
	}
	if _, err := c.terminate(ctx, ngapi.TerminateRequest{}); !bus.IsCode(err, bus.CodeBadRequest) {
		t.Errorf("terminate nothing: %v", err)
	}
	if r, err := c.terminate(ctx, ngapi.TerminateRequest{Call: "own2"}); err != nil || !slices.Equal(r.Terminated, []string{"own2"}) {
		t.Errorf("terminate own2: %v %+v", err, r)
	}
	if r, err := c.terminate(ctx, ngapi.TerminateRequest{Which: ngapi.WhichForeign}); err != nil || !slices.Equal(r.Terminated, []string{"far1"}) {
		t.Errorf("terminate foreign: %v %+v", err, r)
	}
	if r, err := c.terminate(ctx, ngapi.TerminateRequest{Which: ngapi.WhichAll}); err != nil || !slices.Equal(r.Terminated, []string{"own1"}) {
		t.Errorf("terminate all: %v %+v", err, r)
	}
	if got := ids(ngapi.WhichAll); len(got) != 0 {
		t.Errorf("left: %v", got)
	}
	if st := e.Stats(); st.Forced != 3 {
		t.Errorf("forced terminated %d, want 3", st.Forced)
	}

	// settings: read, change two, refuse bad ones without changing any.
	s, err := c.settings(ctx, ngapi.SettingsRequest{})
	if want := (ngapi.Settings{Timeout: 60, SilentTimeout: 3600, OfferTimeout: 3600, FinalTimeout: 0, DeleteDelay: 30, MaxSessions: -1}); err != nil || s != want {
		t.Fatalf("settings %+v %v, want %+v", s, err, want)
	}
	s, err = c.settings(ctx, ngapi.SettingsRequest{Set: map[string]int{"timeout": 5, "maxsessions": 1}})
	if err != nil || s.Timeout != 5 || s.MaxSessions != 1 || e.Timers().Timeout != 5 {
		t.Fatalf("after set: %+v %v", s, err)
	}
	offer("own3")
	if r := handle(p, `{"command":"offer","call-id":"own4","from-tag":"A","sdp":"v=0\r\nc=IN IP4 198.51.100.5\r\nm=audio 7300 RTP/AVP 0\r\n"}`); !strings.Contains(r, "Parallel session limit reached") {
		t.Errorf("maxsessions 1 did not refuse a second call: %s", r)
	}
	for _, bad := range []map[string]int{{"timeout": -1}, {"maxsessions": -2}, {"loglevel": 7}, {"timeout": 9, "bogus": 1}} {
		if _, err := c.settings(ctx, ngapi.SettingsRequest{Set: bad}); !bus.IsCode(err, bus.CodeBadRequest) {
			t.Errorf("set %v: %v", bad, err)
		}
	}
	if s, _ := c.settings(ctx, ngapi.SettingsRequest{}); s.Timeout != 5 {
		t.Errorf("a refused set changed timeout to %d", s.Timeout)
	}
}
