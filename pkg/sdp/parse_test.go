package sdp

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// crlf turns a readable LF-separated SDP into a CRLF one.
func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.TrimLeft(s, "\n"), "\n", "\r\n"))
}

func mustParse(t *testing.T, s string) *Session {
	t.Helper()
	sess, err := Parse(crlf(s))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return sess
}

func TestParseErrors(t *testing.T) {
	const head = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n"
	tests := []struct {
		name string
		body string
		line string // expected "line N" in the error
	}{
		{"empty", "", "line 1"},
		{"not v first", "o=- 1 1 IN IP4 192.0.2.1\nv=0\n", "line 1"},
		{"v not 0", "v=1\n", "line 1"},
		{"v trailing", "v=0 \n", "line 1"},
		{"missing equals", head + "a:foo\n", "line 5"},
		{"short line", head + "a\n", "line 5"},
		{"unknown type", head + "x=1\n", "line 5"},
		{"upper case type", head + "A=rtpmap\n", "line 5"},
		{"o in media", head + "m=audio 1 RTP/AVP 0\no=- 1 1 IN IP4 192.0.2.1\n", "line 6"},
		{"s in media", head + "m=audio 1 RTP/AVP 0\ns=x\n", "line 6"},
		{"second o", head + "o=- 1 1 IN IP4 192.0.2.1\n", "line 5"},
		{"short o", "v=0\no=- 1 1 IN IP4\n", "line 2"},
		{"second session", head + "v=0\n", "line 5"},
		{"second c", head + "c=IN IP4 192.0.2.1\nc=IN IP4 192.0.2.2\n", "line 6"},
		{"c hostname", head + "c=IN IP4 host.example\n", "line 5"},
		{"c family mismatch", head + "c=IN IP6 192.0.2.1\n", "line 5"},
		{"c lower-case family", head + "c=IN ip4 192.0.2.1\n", "line 5"},
		{"c net type", head + "c=ATM IP4 192.0.2.1\n", "line 5"},
		{"c multicast ttl", head + "c=IN IP4 233.252.0.1/127\n", "line 5"},
		{"c zone", head + "c=IN IP6 fe80::1%eth0\n", "line 5"},
		{"c short", head + "c=IN IP4\n", "line 5"},
		{"m short", head + "m=audio 5000\n", "line 5"},
		{"m port text", head + "m=audio port RTP/AVP 0\n", "line 5"},
		{"m port range", head + "m=audio 65536 RTP/AVP 0\n", "line 5"},
		{"m port negative", head + "m=audio -2 RTP/AVP 0\n", "line 5"},
		{"m port count 0", head + "m=audio 5000/0 RTP/AVP 0\n", "line 5"},
		{"m port count 11", head + "m=audio 5000/11 RTP/AVP 0\n", "line 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			if !errors.Is(err, ErrParse) {
				t.Fatalf("err = %v, want ErrParse", err)
			}
			if !strings.Contains(err.Error(), tt.line+":") {
				t.Errorf("err = %v, want it to name %s", err, tt.line)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		media int
	}{
		{"lf only", "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 1 RTP/AVP 0\n", 1},
		{"no final newline", "v=0\r\ns=-\r\nm=audio 1 RTP/AVP 0", 1},
		{"no o= line", "v=0\r\ns=-\r\n", 0},
		{"blank line ends body", "v=0\r\n\r\nm=audio 1 RTP/AVP 0\r\nbogus\r\n", 0},
		{"bad origin address tolerated", "v=0\r\no=- 1 1 IN IP4 host.example\r\n", 0},
		{"bracketed IPv6", "v=0\r\nc=IN IP6 [2001:db8::1]\r\n", 0},
		{"lower-case net type", "v=0\r\nc=in IP4 192.0.2.1\r\n", 0},
		{"all line types", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\ni=x\r\nu=http://x\r\ne=a@b\r\np=+1\r\nc=IN IP4 192.0.2.1\r\nb=AS:1\r\nt=0 0\r\nr=1 2 3\r\nz=1 2\r\nk=prompt\r\na=x\r\nm=audio 1 RTP/AVP 0\r\ni=y\r\nc=IN IP4 192.0.2.2\r\nb=AS:2\r\nk=clear:x\r\na=y\r\n", 1},
		{"port with junk", "v=0\r\nm=audio 5000x RTP/AVP 0\r\n", 1},
		{"unknown protocol", "v=0\r\nm=application 0 *\r\n", 1},
		{"trailing single byte", "v=0\r\nm=audio 1 RTP/AVP 0\r\nx", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := len(s.Media()); got != tt.media {
				t.Errorf("%d media, want %d", got, tt.media)
			}
		})
	}
}

func TestSessionFacts(t *testing.T) {
	s := mustParse(t, `
v=0
o=alice 2890844526 2890844527 IN IP4 192.0.2.10
s=Talk about it
c=IN IP4 192.0.2.10
t=0 0
a=rtpengine:0123456789ab
a=tool:x
a=flag
a=tool:y
m=audio 49170 RTP/AVP 0
`)
	want := Origin{Username: "alice", SessionID: "2890844526", Version: "2890844527", NetType: "IN", AddrType: "IP4", Addr: "192.0.2.10"}
	if got := s.Origin(); got != want {
		t.Errorf("Origin = %+v, want %+v", got, want)
	}
	if got := s.SessionName(); got != "Talk about it" {
		t.Errorf("SessionName = %q", got)
	}
	if a, ok := s.Connection(); !ok || a != netip.MustParseAddr("192.0.2.10") {
		t.Errorf("Connection = %v %v", a, ok)
	}
	if !s.HasLoopMarker("0123456789ab") || s.HasLoopMarker("0123456789ac") {
		t.Error("HasLoopMarker")
	}
	if got := s.Attr("tool"); !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Errorf("Attr(tool) = %q", got)
	}
	if got := s.Attr("flag"); !reflect.DeepEqual(got, []string{""}) {
		t.Errorf("Attr(flag) = %q", got)
	}
	if got := s.Attr("none"); got != nil {
		t.Errorf("Attr(none) = %q", got)
	}
	if m := s.Media()[0]; m.Attr("tool") != nil {
		t.Error("session attributes leak into the media")
	}
}

func TestMediaFacts(t *testing.T) {
	type facts struct {
		Type      string
		Port      int
		NumPorts  int
		Proto     string
		RTP       bool
		Formats   []string
		Conn      string
		RTCPPort  int
		RTCPAddr  string
		RTCPOK    bool
		Mux       bool
		ICE       bool
		Trickle   bool
		Ptime     int
		Mid       string
		Direction Direction
		Zero      bool
	}
	const head = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
	tests := []struct {
		name string
		sdp  string
		want facts
	}{
		{"plain", head + "m=audio 5000 RTP/AVP 0 8\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0", "8"}, "192.0.2.1", 0, "", false, false, false, false, 0, "", SendRecv, false}},
		{"own c and port count", head + "m=video 5002/2 RTP/AVPF 96\nc=IN IP6 2001:db8::2\n",
			facts{"video", 5002, 2, "RTP/AVPF", true, []string{"96"}, "2001:db8::2", 0, "", false, false, false, false, 0, "", SendRecv, false}},
		{"protocol case", head + "m=audio 5000 udp/tls/rtp/savpf 111\n",
			facts{"audio", 5000, 1, "udp/tls/rtp/savpf", true, []string{"111"}, "192.0.2.1", 0, "", false, false, false, false, 0, "", SendRecv, false}},
		{"udptl", head + "m=image 6000 udptl t38\n",
			facts{"image", 6000, 1, "udptl", false, []string{"t38"}, "192.0.2.1", 0, "", false, false, false, false, 0, "", SendRecv, false}},
		{"unknown protocol, no formats", head + "m=application 0 *\n",
			facts{"application", 0, 1, "*", false, nil, "192.0.2.1", 0, "", false, false, false, false, 0, "", SendRecv, false}},
		{"rtcp port", head + "m=audio 5000 RTP/AVP 0\na=rtcp:5001\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 5001, "", true, false, false, false, 0, "", SendRecv, false}},
		{"rtcp with address, bad one skipped", head + "m=audio 5000 RTP/AVP 0\na=rtcp:0\na=rtcp:5003 IN IP4 192.0.2.9\na=rtcp-mux\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 5003, "192.0.2.9", true, true, false, false, 0, "", SendRecv, false}},
		{"rtcp with bad address is unknown", head + "m=audio 5000 RTP/AVP 0\na=rtcp:5003 IN IP4 x\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 0, "", false, false, false, false, 0, "", SendRecv, false}},
		{"ptime mid", head + "m=audio 5000 RTP/AVP 0\na=ptime:30\na=ptime:20\na=mid:audio0\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 0, "", false, false, false, false, 30, "audio0", SendRecv, false}},
		{"bad ptime", head + "m=audio 5000 RTP/AVP 0\na=ptime:x\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 0, "", false, false, false, false, 0, "", SendRecv, false}},
		{"sendonly", head + "m=audio 5000 RTP/AVP 0\na=sendonly\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 0, "", false, false, false, false, 0, "", SendOnly, false}},
		{"inactive", head + "m=audio 5000 RTP/AVP 0\na=inactive\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 0, "", false, false, false, false, 0, "", Inactive, false}},
		{"sendonly beats inactive", head + "m=audio 5000 RTP/AVP 0\na=inactive\na=sendonly\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 0, "", false, false, false, false, 0, "", SendOnly, false}},
		{"sendrecv not consulted", head + "m=audio 5000 RTP/AVP 0\na=sendrecv\na=inactive\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 0, "", false, false, false, false, 0, "", Inactive, false}},
		{"zero address hold", head + "m=audio 5000 RTP/AVP 0\nc=IN IP4 0.0.0.0\na=sendrecv\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "0.0.0.0", 0, "", false, false, false, false, 0, "", SendRecv, true}},
		{"ice", head + "m=audio 9 RTP/AVP 0\nc=IN IP4 0.0.0.0\na=ice-ufrag:abcd\n",
			facts{"audio", 9, 1, "RTP/AVP", true, []string{"0"}, "0.0.0.0", 0, "", false, false, true, true, 0, "", SendRecv, true}},
		{"ice options", head + "m=audio 5000 RTP/AVP 0\na=ice-ufrag:abcd\na=ice-options:ice2 trickle\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 0, "", false, false, true, true, 0, "", SendRecv, false}},
		{"candidates without ufrag are not ICE", head + "m=audio 5000 RTP/AVP 0\na=candidate:1 1 UDP 1 192.0.2.1 5000 typ host\n",
			facts{"audio", 5000, 1, "RTP/AVP", true, []string{"0"}, "192.0.2.1", 0, "", false, false, false, false, 0, "", SendRecv, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.sdp).Media()[0]
			port, addr, ok := m.RTCP()
			conn, _ := m.Connection()
			rtcpAddr := ""
			if addr.IsValid() {
				rtcpAddr = addr.String()
			}
			got := facts{m.Type(), m.Port(), m.NumPorts(), m.Proto(), m.IsRTP(), m.Formats(), conn.String(),
				port, rtcpAddr, ok, m.RTCPMux(), m.HasICE(), m.TrickleICE(), m.Ptime(), m.Mid(), m.SenderDirection(), m.ZeroAddress()}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if m.Index() != 1 {
				t.Errorf("Index = %d", m.Index())
			}
		})
	}
}

func TestDirectionLevels(t *testing.T) {
	tests := []struct {
		session, media string
		want           Direction
	}{
		{"", "", SendRecv},
		{"a=recvonly\n", "a=sendonly\n", RecvOnly},
		{"a=sendonly\n", "", SendOnly},
		{"a=inactive\n", "a=sendrecv\n", Inactive},
		{"a=inactive\n", "a=sendonly\n", SendOnly},
		{"a=sendrecv\n", "a=recvonly\n", RecvOnly},
	}
	for _, tt := range tests {
		s := mustParse(t, "v=0\nc=IN IP4 192.0.2.1\n"+tt.session+"m=audio 1 RTP/AVP 0\n"+tt.media)
		if got := s.Media()[0].SenderDirection(); got != tt.want {
			t.Errorf("session %q media %q: %s, want %s", tt.session, tt.media, got, tt.want)
		}
	}
}

func TestMediaIndexAndSessionICE(t *testing.T) {
	s := mustParse(t, `
v=0
c=IN IP4 192.0.2.1
a=ice-ufrag:sess
m=audio 1 RTP/AVP 0
m=video 3 RTP/AVP 96
c=IN IP4 192.0.2.2
a=end-of-candidates
`)
	ms := s.Media()
	if len(ms) != 2 || ms[0].Index() != 1 || ms[1].Index() != 2 {
		t.Fatalf("media %v", ms)
	}
	if !ms[0].HasICE() || !ms[1].HasICE() {
		t.Error("session-level ice-ufrag makes every media ICE")
	}
	if ms[0].HasConnection() || !ms[1].HasConnection() {
		t.Error("HasConnection")
	}
	if ms[0].HasEndOfCandidates() || !ms[1].HasEndOfCandidates() {
		t.Error("HasEndOfCandidates")
	}
}

func TestPayloadTypes(t *testing.T) {
	s := mustParse(t, `
v=0
c=IN IP4 192.0.2.1
m=audio 1 RTP/AVP 0 8 96 97 98 13 11 35
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1; stereo=1
a=rtcp-fb:96 transport-cc
a=rtcp-fb:* nack
a=rtcp-fb:96 nack
a=rtpmap:97 AMR/8000/1
a=rtpmap:97 AMR/8000
a=fmtp:97 octet-align=0
a=fmtp:97 octet-align=1
a=rtpmap:98 opus/16000
a=rtpmap:8 pcma/8000
a=fmtp:35 x=1
`)
	got, err := s.Media()[0].PayloadTypes()
	if err != nil {
		t.Fatal(err)
	}
	want := []PayloadType{
		{PT: 0, RTPMap: "PCMU/8000", Encoding: "PCMU", Clock: 8000},
		{PT: 8, RTPMap: "pcma/8000", Encoding: "pcma", Clock: 8000},
		{PT: 96, RTPMap: "opus/48000/2", Encoding: "opus", Clock: 48000, Params: "2", Fmtp: "useinbandfec=1; stereo=1", RTCPFB: []string{"transport-cc", "nack"}},
		{PT: 97, RTPMap: "AMR/8000", Encoding: "AMR", Clock: 8000, Fmtp: "octet-align=1"},
		{PT: 98, RTPMap: "opus/48000", Encoding: "opus", Clock: 48000},
		{PT: 13, RTPMap: "CN/8000", Encoding: "CN", Clock: 8000},
		{PT: 11, RTPMap: "L16/44100/2", Encoding: "L16", Clock: 44100, Params: "2"},
		{PT: 35, Fmtp: "x=1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestPayloadTypesErrors(t *testing.T) {
	for _, formats := range []string{"abc", "128", "0 -1", "0  ", "0 x8"} {
		s := mustParse(t, "v=0\nc=IN IP4 192.0.2.1\nm=audio 1 RTP/AVP "+formats+"\n")
		if _, err := s.Media()[0].PayloadTypes(); !errors.Is(err, ErrIncomplete) {
			t.Errorf("%q: err = %v, want ErrIncomplete", formats, err)
		}
	}
	// strtoul semantics, as rtpengine: leading digits are enough.
	s := mustParse(t, "v=0\nc=IN IP4 192.0.2.1\nm=audio 1 RTP/AVP 8x 0\n")
	if pts, err := s.Media()[0].PayloadTypes(); err != nil || len(pts) != 2 || pts[0].PT != 8 {
		t.Errorf("8x: %v %v", pts, err)
	}
	// Not RTP: no payload types and no error.
	s = mustParse(t, "v=0\nc=IN IP4 192.0.2.1\nm=image 1 udptl t38\n")
	if pts, err := s.Media()[0].PayloadTypes(); err != nil || pts != nil {
		t.Errorf("udptl: %v %v", pts, err)
	}
}

func TestRewritePlanErrors(t *testing.T) {
	s := mustParse(t, "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 1 RTP/AVP 0\nc=IN IP4 192.0.2.1\n")
	addr := netip.MustParseAddr("203.0.113.1")
	tests := []struct {
		name string
		plan Plan
	}{
		{"media count", Plan{}},
		{"no address", Plan{Media: []MediaPlan{{Port: 2}}}},
		{"no origin address", Plan{ReplaceOrigin: true, Media: []MediaPlan{{Port: 2}}}},
		{"port range", Plan{Media: []MediaPlan{{Port: 70000, Addr: addr}}}},
		{"direction", Plan{Media: []MediaPlan{{Port: 2, Addr: addr, Direction: "both"}}}},
		{"pt range", Plan{Media: []MediaPlan{{Port: 2, Addr: addr, Codecs: []PayloadType{{PT: 200}}}}}},
		{"line break", Plan{Media: []MediaPlan{{Port: 2, Addr: addr, ExtraAttrs: []string{"x\r\ny"}}}}},
	}
	for _, tt := range tests {
		if _, err := Rewrite(s, tt.plan); !errors.Is(err, ErrPlan) {
			t.Errorf("%s: err = %v, want ErrPlan", tt.name, err)
		}
	}
}

func TestRewriteKeepsInput(t *testing.T) {
	body := crlf("v=0\nc=IN IP4 192.0.2.1\nm=audio 1 RTP/AVP 0\na=sendrecv\n")
	orig := string(body)
	s, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	body[0] = 'x' // Parse copied the text
	pts, err := s.Media()[0].PayloadTypes()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Rewrite(s, Plan{Media: []MediaPlan{{Port: 2000, Addr: netip.MustParseAddr("203.0.113.1"), Codecs: pts, Direction: SendRecv, RTCPPort: 2001}}})
	if err != nil {
		t.Fatal(err)
	}
	want := "v=0\r\nc=IN IP4 203.0.113.1\r\nm=audio 2000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=rtcp:2001\r\n"
	if string(out) != want {
		t.Errorf("got %q\nwant %q (input %q)", out, want, orig)
	}
}

// TestPayloadTypesIndexed checks that the index used for huge sections
// gives the same answers as the per-payload-type scan.
func TestPayloadTypesIndexed(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.sdp"))
	if err != nil {
		t.Fatal(err)
	}
	bodies := [][]byte{crlf("v=0\nc=IN IP4 192.0.2.1\nm=audio 1 RTP/AVP 96 96 97 0\na=rtpmap:96 x/1\na=rtcp-fb:96 a\na=rtcp-fb:96 b\na=fmtp:97 y\na=rtcp-fb:0 c\n")}
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	saved := indexThreshold
	defer func() { indexThreshold = saved }()
	for _, b := range bodies {
		s, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range s.Media() {
			indexThreshold = 1 << 30
			scanned, err1 := m.PayloadTypes()
			indexThreshold = 0
			indexed, err2 := m.PayloadTypes()
			if !reflect.DeepEqual(scanned, indexed) || (err1 == nil) != (err2 == nil) {
				t.Errorf("%q media %d:\nscan  %+v %v\nindex %+v %v", b, m.Index(), scanned, err1, indexed, err2)
			}
		}
	}
}

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		body string
		want []string
	}{
		{"v=0\r\ns=-\r\n", []string{"v=0\r\ns=-\r\n"}},
		{"v=0\r\ns=a\r\nv=0\r\ns=b\r\n", []string{"v=0\r\ns=a\r\n", "v=0\r\ns=b\r\n"}},
		{"v=0\ns=a\nv=0\ns=b\nv=0", []string{"v=0\ns=a\n", "v=0\ns=b\n", "v=0"}},
		{"v=0\r\na=x:v=0\r\n", []string{"v=0\r\na=x:v=0\r\n"}},
	} {
		var got []string
		for _, b := range Split([]byte(tt.body)) {
			got = append(got, string(b))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Split(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}
