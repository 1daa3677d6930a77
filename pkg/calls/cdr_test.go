package calls

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestCallEndedLineIsACDR: the one line logged when a call ends carries the
// reason, the duration and, per party, what the workers counted from it.
func TestCallEndedLineIsACDR(t *testing.T) {
	for _, tt := range []struct {
		name   string
		reason string
		end    func(t *testing.T, e *Engine, now *time.Time)
	}{
		{"delete", "regular", func(t *testing.T, e *Engine, _ *time.Time) {
			r := req("delete", "c1", "", "", "")
			r.DeleteDelay = 0
			if _, err := e.Delete(r); err != nil {
				t.Fatal(err)
			}
		}},
		{"terminate", "forced", func(t *testing.T, e *Engine, _ *time.Time) {
			if !e.Terminate("c1") {
				t.Fatal("Terminate: call not found")
			}
		}},
		{"media timeout", "timeout", func(t *testing.T, e *Engine, now *time.Time) {
			*now = now.Add(10 * time.Minute) // past timeout (60 s) since the last packet
			e.Tick(*now)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, format := range []string{"json", "text"} {
				var buf bytes.Buffer
				var h slog.Handler = slog.NewJSONHandler(&buf, nil)
				if format == "text" {
					h = slog.NewTextHandler(&buf, nil)
				}
				now := time.Unix(1700000000, 0)
				e := New(Config{Node: "test", Ports: newFakePorts(), InstanceID: "0123456789ab", MaxSessions: -1,
					Interfaces: []Interface{{"default", []int{4}}},
					Timers:     Timers{Timeout: 60, SilentTimeout: 3600, OfferTimeout: 3600, DeleteDelay: 30},
					Now:        func() time.Time { return now }, Log: slog.New(h)})
				if _, err := e.Offer(context.Background(), req("offer", "c1", "A", "", offerSDP)); err != nil {
					t.Fatal(err)
				}
				if _, err := e.Answer(context.Background(), req("answer", "c1", "A", "B", answerSDP)); err != nil {
					t.Fatal(err)
				}
				// The workers' counters: A sent 10 RTP packets (one bad) and
				// 2 RTCP on audio, 3 on video; B 5 RTP packets on audio.
				rec := e.mustRecord(t, "c1")
				seen := map[netip.AddrPort]Observed{}
				last := now.Add(90 * time.Second)
				for _, l := range rec.Legs {
					for _, m := range l.Medias {
						for _, s := range m.Streams {
							var o Observed
							switch {
							case l.Tag == "A" && m.Index == 1 && s.Component == 1:
								o = Observed{Packets: 10, Bytes: 1720, Errors: 1, Endpoint: netip.MustParseAddrPort("198.51.100.10:6000")}
							case l.Tag == "A" && m.Index == 1:
								o = Observed{Packets: 2, Bytes: 104}
							case l.Tag == "A" && s.Component == 1:
								o = Observed{Packets: 3, Bytes: 3000}
							case l.Tag == "B" && m.Index == 1 && s.Component == 1:
								o = Observed{Packets: 5, Bytes: 860, Endpoint: netip.MustParseAddrPort("203.0.113.50:7000")}
							default:
								continue
							}
							o.LastPacket = last
							seen[s.Local] = o
						}
					}
				}
				e.SetActivity(func(ap netip.AddrPort) (Observed, bool) { o, ok := seen[ap]; return o, ok }, 0)
				now = now.Add(2 * time.Minute)
				tt.end(t, e, &now)
				if own, _ := e.Counts(); own != 0 {
					t.Fatalf("the call did not end")
				}
				out := strings.TrimSuffix(buf.String(), "\n")
				var line string
				for _, l := range strings.Split(out, "\n") {
					if strings.Contains(l, "call ended") {
						if line != "" {
							t.Fatalf("two end lines:\n%s", out)
						}
						line = l
					}
				}
				if line == "" {
					t.Fatalf("no end line:\n%s", out)
				}
				if format == "text" {
					for _, want := range []string{`msg="call ended" call=c1 reason=` + tt.reason + " ", "ml0.tag=A ",
						"ml0.packets=15 ml0.bytes=4824 ml0.errors=1 ml0.endpoint=198.51.100.10:6000",
						"ml1.tag=B ml1.packets=5 ml1.bytes=860 ml1.errors=0 ml1.endpoint=203.0.113.50:7000", " packets=20 bytes=5684 errors=1"} {
						if !strings.Contains(line, want) {
							t.Errorf("text line lacks %q:\n%s", want, line)
						}
					}
					continue
				}
				var got struct {
					Msg, Call, Reason, Created, LastSignal string
					Duration                               time.Duration
					Tags                                   []string
					Foreign                                bool
					Packets, Bytes, Errors                 uint64
					ML0, ML1                               struct {
						Tag, Endpoint          string
						Packets, Bytes, Errors uint64
					}
				}
				dec := json.NewDecoder(strings.NewReader(line))
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("%v: %s", err, line)
				}
				// encoding/json matches "last_signal" to nothing; read it by hand.
				var raw map[string]any
				_ = json.Unmarshal([]byte(line), &raw)
				wantDur := 2 * time.Minute
				if tt.reason == "timeout" {
					wantDur += 10 * time.Minute
				}
				if got.Call != "c1" || got.Reason != tt.reason || got.Duration != wantDur || got.Foreign ||
					strings.Join(got.Tags, ",") != "A,B" || got.Created != "2023-11-14T22:13:20Z" || raw["last_signal"] != "2023-11-14T22:13:20Z" {
					t.Errorf("call fields: %+v last_signal=%v\n%s", got, raw["last_signal"], line)
				}
				if got.ML0.Tag != "A" || got.ML0.Packets != 15 || got.ML0.Bytes != 4824 || got.ML0.Errors != 1 || got.ML0.Endpoint != "198.51.100.10:6000" {
					t.Errorf("party A: %+v", got.ML0)
				}
				if got.ML1.Tag != "B" || got.ML1.Packets != 5 || got.ML1.Bytes != 860 || got.ML1.Errors != 0 || got.ML1.Endpoint != "203.0.113.50:7000" {
					t.Errorf("party B: %+v", got.ML1)
				}
				if got.Packets != 20 || got.Bytes != 5684 || got.Errors != 1 {
					t.Errorf("totals: %d packets, %d bytes, %d errors", got.Packets, got.Bytes, got.Errors)
				}
			}
		})
	}
}

// TestSessionsTerminateAndTimers: the operator's view of the engine.
func TestSessionsTerminateAndTimers(t *testing.T) {
	e := newTestEngine(newFakePorts())
	for _, id := range []string{"c2", "c1"} {
		if _, err := e.Offer(context.Background(), req("offer", id, "A", "", offerSDP)); err != nil {
			t.Fatal(err)
		}
	}
	s := e.Sessions()
	if len(s) != 2 || s[0].ID != "c1" || s[1].ID != "c2" || s[0].Owner != "test" || s[0].Foreign || len(s[0].Tags) != 2 || s[0].Tags[0] != "A" {
		t.Fatalf("sessions %+v", s)
	}
	if e.Terminate("nope") {
		t.Fatal("terminated a call that does not exist")
	}
	if !e.Terminate("c1") || e.Terminate("c1") {
		t.Fatal("terminate c1 once")
	}
	if s := e.Sessions(); len(s) != 1 || s[0].ID != "c2" {
		t.Fatalf("after terminate: %+v", s)
	}
	if st := e.Stats(); st.Forced != 1 || st.Regular != 0 {
		t.Fatalf("stats %+v", st)
	}
	got := e.UpdateTimers(func(t *Timers) { t.Timeout = 5 })
	if got.Timeout != 5 || got.SilentTimeout != 3600 || e.Timers().Timeout != 5 {
		t.Fatalf("timers %+v", got)
	}
	e.SetMaxSessions(7)
	if e.MaxSessions() != 7 {
		t.Fatalf("max sessions %d", e.MaxSessions())
	}
}
