package ngctl

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/calls"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// seqPorts hands out 203.0.113.1:30000, 30002, ... like a fresh portd.
type seqPorts struct{ next int }

func (s *seqPorts) Take(_ context.Context, _ string, family int, single bool) (portdapi.Pair, error) {
	if s.next == 0 {
		s.next = 30000
	}
	a := netip.MustParseAddr("203.0.113.1")
	p := portdapi.Pair{Interface: "default", RTP: netip.AddrPortFrom(a, uint16(s.next))}
	if !single {
		p.RTCP = netip.AddrPortFrom(a, uint16(s.next+1))
	}
	s.next += 2
	return p, nil
}
func (s *seqPorts) Put(portdapi.Pair)    {}
func (s *seqPorts) Free([]portdapi.Pair) {}

func newTestProtocol() *protocol {
	e := calls.New(calls.Config{Node: "t", Ports: &seqPorts{}, MaxSessions: -1, Log: slog.New(slog.DiscardHandler),
		Timers: calls.Timers{Timeout: 60, SilentTimeout: 3600, OfferTimeout: 3600, DeleteDelay: 30}})
	return newProtocol(e, slog.New(slog.DiscardHandler))
}

func handle(p *protocol, doc string) string {
	return string(p.Handle(context.Background(), []byte(doc), netip.MustParseAddrPort("192.0.2.10:5060")))
}

// TestReferenceBytes replays the concrete exchanges of reference §1.12.
func TestReferenceBytes(t *testing.T) {
	p := newTestProtocol()
	offerSDP := "v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 7300 RTP/AVP 0\r\n"
	offer := "d7:command5:offer7:call-id2:c18:from-tag3:ft13:sdp93:" + offerSDP +
		"5:flagsl13:trust-addresse7:replacel6:origin18:session-connectione3:ICE6:remove13:received-froml3:IP410:192.0.2.10ee"
	wantSDP := "v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=rtcp:30001\r\n"
	for _, tt := range []struct{ name, in, want string }{
		{"ping", "d7:command4:pinge", "d6:result4:ponge"},
		{"offer", offer, "d3:sdp140:" + wantSDP + "6:result2:oke"},
		{"answer of an unknown call", "d7:command6:answer7:call-id1:x8:from-tag1:a6:to-tag1:b3:sdp5:v=0\r\ne",
			"d6:result5:error12:error-reason15:Unknown call-ide"},
		{"delete of an unknown call", "d7:command6:delete7:call-id2:c28:from-tag3:ft1e",
			"d7:warning38:Call-ID not found or tags didn't match6:result2:oke"},
		{"list", "d7:command4:list5:limiti2ee", "d5:callsl2:c1e6:result2:oke"},
		{"json ping", `{"command":"ping"}`, `{"result":"pong"}`},
		{"no payload", "", "d6:result5:error12:error-reason25:Invalid data (no payload)e"},
		{"not ng", "hello", "d6:result5:error12:error-reason22:Invalid NG data formate"},
		{"bad bencode", "d7:command", "d6:result5:error12:error-reason35:Could not decode bencode dictionarye"},
		{"bad json", "{nope", `{"result":"error","error-reason":"Failed to parse JSON document"}`},
		{"no command", "d3:fooi1ee", `d6:result5:error12:error-reason36:Dictionary contains no key "command"e`},
		{"unknown command", "d7:command5:dancee", "d6:result5:error12:error-reason20:Unrecognized commande"},
		{"negative limit", "d7:command4:list5:limiti-1ee", "d6:result5:error12:error-reason27:invalid limit, must be >= 0e"},
		{"offer without from-tag", "d7:command5:offer7:call-id1:x3:sdp3:v=0e", "d6:result5:error12:error-reason22:No from-tag in messagee"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := handle(p, tt.in); got != tt.want {
				t.Fatalf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestQueryAndStatisticsShape(t *testing.T) {
	p := newTestProtocol()
	sdp := "v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 7300 RTP/AVP 0\r\n"
	handle(p, `{"command":"offer","call-id":"q1","from-tag":"a","sdp":"`+strings.ReplaceAll(sdp, "\r\n", `\r\n`)+`"}`)
	r, err := bencode.Decode([]byte(handle(p, "d7:command5:query7:call-id2:q1e")), bencode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range r.Dict {
		keys = append(keys, kv.Key)
	}
	if got := strings.Join(keys, ","); got != "created,created_us,last signal,SSRC,tags,totals,result" {
		t.Fatalf("query keys %s", got)
	}
	tags, _ := r.Get("tags")
	a, ok := tags.Get("a")
	if !ok {
		t.Fatalf("no tag a in %v", tags)
	}
	medias, _ := a.Get("medias")
	streams, _ := medias.List[0].Get("streams")
	ep, _ := streams.List[0].Get("endpoint")
	if addr, _ := ep.GetString("address"); addr != "198.51.100.5" {
		t.Fatalf("endpoint %v", ep)
	}
	if _, ok := tags.Get("<untagged 1>"); !ok {
		t.Fatalf("the callee before its answer is <untagged 1>: %v", tags)
	}

	s, err := bencode.Decode([]byte(handle(p, "d7:command10:statisticse")), bencode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Get("statistics")
	var members []string
	for _, kv := range st.Dict {
		members = append(members, kv.Key)
	}
	if got := strings.Join(members, ","); got != "currentstatistics,totalstatistics,intervalstatistics,mos,controlstatistics,interfaces,transcoders" {
		t.Fatalf("statistics members %s", got)
	}
	cur, _ := st.Get("currentstatistics")
	if n, _ := cur.GetInt("sessionsown"); n != 1 {
		t.Fatalf("sessionsown %d", n)
	}
	ctrl, _ := st.Get("controlstatistics")
	px, _ := ctrl.Get("proxies")
	if proxy, _ := px.List[0].GetString("proxy"); proxy != "192.0.2.10" {
		t.Fatalf("proxies %v", px)
	}
	tot, _ := st.Get("totalstatistics")
	if up, ok := tot.GetString("uptime"); !ok || strings.Trim(up, "0123456789") != "" || up == "" {
		t.Fatalf("uptime should be whole seconds as a string, as rtpengine's: %v", tot)
	}
	if avg, _ := tot.GetString("avgcallduration"); !strings.Contains(avg, ".") {
		t.Fatalf("avgcallduration should be a string with 6 decimals: %v", tot)
	}
}

func TestLoadLimitReply(t *testing.T) {
	p := newTestProtocol()
	p.engine.SetMaxSessions(0)
	sdp := "v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 7300 RTP/AVP 0\r\n"
	with := handle(p, "d7:command5:offer7:call-id1:x8:from-tag1:a3:sdp"+itoa(len(sdp))+":"+sdp+"8:supportsl10:load limitee")
	if with != "d6:result10:load limit7:message30:Parallel session limit reachede" {
		t.Fatalf("with supports: %q", with)
	}
	without := handle(p, "d7:command5:offer7:call-id1:x8:from-tag1:a3:sdp"+itoa(len(sdp))+":"+sdp+"e")
	if without != "d6:result5:error12:error-reason30:Parallel session limit reachede" {
		t.Fatalf("without supports: %q", without)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// FuzzHandle: any document gets a reply that decodes, ending with result.
func FuzzHandle(f *testing.F) {
	sdp := "v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 7300 RTP/AVP 0\r\n"
	for _, s := range []string{"d7:command4:pinge", `{"command":"list"}`, "",
		"d7:command5:offer7:call-id2:c18:from-tag3:ft13:sdp93:" + sdp + "5:flagsl13:trust-addresse7:replacel6:origin18:session-connectionee",
		"d7:command6:answer7:call-id2:c18:from-tag3:ft16:to-tag2:tt3:sdp93:" + sdp + "e",
		"d7:command6:delete7:call-id2:c1e", "d7:command5:query7:call-id2:c1e", "d7:command10:statisticse",
		`{"command":"offer","call id":"x","from-tag":"a","sdp":"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n","direction":["a","b"],"rtcp-mux":["require"],"address-family":"IP6"}`} {
		f.Add([]byte(s))
	}
	p := newTestProtocol()
	f.Fuzz(func(t *testing.T, doc []byte) {
		out := p.Handle(context.Background(), doc, netip.MustParseAddrPort("192.0.2.1:5060"))
		var v bencode.Value
		var err error
		if len(doc) > 0 && doc[0] == '{' {
			v, err = bencode.FromJSON(out, bencode.Limits{})
		} else {
			v, err = bencode.Decode(out, bencode.Limits{})
		}
		if err != nil || v.Kind != bencode.KindDict || len(v.Dict) == 0 {
			t.Fatalf("reply %q does not decode: %v", out, err)
		}
		res, _ := v.GetString("result")
		if res == "" {
			t.Fatalf("reply without result: %q", out)
		}
		if res != "error" && res != "load limit" && v.Dict[len(v.Dict)-1].Key != "result" {
			t.Fatalf("result is not the last key: %q", out)
		}
	})
}

// TestCallIDLimit: a Call-ID beyond nodestate.MaxIDLen gets an ng error
// naming the limit, for every command that takes one, and makes no call;
// one at the limit works.
func TestCallIDLimit(t *testing.T) {
	sdp := "v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 7300 RTP/AVP 0\r\n"
	atLimit := strings.Repeat(".", nodestate.MaxIDLen)
	over := strings.Repeat(".", 3000)
	letters := strings.Repeat("a", nodestate.MaxIDLen+1)
	doc := func(cmd, id string) string {
		d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)},
			bencode.Pair{Key: "from-tag", Value: bencode.Str("a")})
		if cmd == "offer" {
			d.Set("sdp", bencode.Str(sdp))
		}
		return string(bencode.Encode(d))
	}
	for _, tt := range []struct {
		name, cmd, id, want string
	}{
		{"offer at the limit", "offer", atLimit, "d3:sdp"},
		{"offer of 3000 dots", "offer", over, "d6:result5:error12:error-reason48:call-id of 3000 bytes is too long (at most 1024)e"},
		{"offer of 1025 letters", "offer", letters, "d6:result5:error12:error-reason48:call-id of 1025 bytes is too long (at most 1024)e"},
		{"query of 3000 dots", "query", over, "d6:result5:error12:error-reason48:call-id of 3000 bytes is too long (at most 1024)e"},
		{"delete of 3000 dots", "delete", over, "d6:result5:error12:error-reason48:call-id of 3000 bytes is too long (at most 1024)e"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestProtocol()
			got := handle(p, doc(tt.cmd, tt.id))
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("reply %.120q, want %.120q", got, tt.want)
			}
			if strings.Contains(tt.want, "error") {
				if n, _ := p.engine.Counts(); n != 0 {
					t.Errorf("%d calls after a refused request, want 0", n)
				}
			}
		})
	}
}
