package bencode

import (
	"bytes"
	"testing"
)

// The concrete ng datagrams of the rtpengine reference, §1.12. CRLF in the
// SDP are real bytes.
const (
	referenceSDPIn = "v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 7300 RTP/AVP 0\r\n"

	referenceOffer = "d7:command5:offer7:call-id2:c18:from-tag3:ft13:sdp93:" + referenceSDPIn +
		"5:flagsl13:trust-addresse7:replacel6:origin18:session-connectione3:ICE6:remove" +
		"13:received-froml3:IP410:192.0.2.10ee"

	referenceSDPOut = "v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\n" +
		"m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=rtcp:30001\r\n"
)

// ngBody splits an ng datagram into cookie and document (the ng layer's job;
// here only to use the reference bytes as written).
func ngBody(t *testing.T, datagram string) (cookie string, doc []byte) {
	t.Helper()
	c, d, ok := bytes.Cut([]byte(datagram), []byte(" "))
	if !ok {
		t.Fatalf("no cookie in %q", datagram)
	}
	return string(c), d
}

func TestReferenceOffer(t *testing.T) {
	cookie, doc := ngBody(t, "5323_2 "+referenceOffer)
	if cookie != "5323_2" {
		t.Fatalf("cookie %q", cookie)
	}
	v, err := Decode(doc, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := NewDict(
		Pair{"command", Str("offer")},
		Pair{"call-id", Str("c1")},
		Pair{"from-tag", Str("ft1")},
		Pair{"sdp", Str(referenceSDPIn)},
		Pair{"flags", Strs("trust-address")},
		Pair{"replace", Strs("origin", "session-connection")},
		Pair{"ICE", Str("remove")},
		Pair{"received-from", Strs("IP4", "192.0.2.10")},
	)
	if !v.Equal(want) {
		t.Errorf("got  %v\nwant %v", v, want)
	}
	if len(referenceSDPIn) != 93 {
		t.Errorf("SDP is %d bytes, the reference says 93", len(referenceSDPIn))
	}
	if rf, _ := v.Get("received-from"); rf.Len() != 2 {
		t.Errorf("received-from = %v", rf)
	}
	if n, err := Split(doc); err != nil || n != len(doc) {
		t.Errorf("Split = %d, %v; want %d", n, err, len(doc))
	}
}

func TestReferenceReplies(t *testing.T) {
	offerReply := NewDict()
	offerReply.Set("sdp", Str(referenceSDPOut)).Set("result", Str("ok"))

	errReply := NewDict()
	errReply.Set("result", Str("error")).Set("error-reason", Str("Unknown call-id"))

	warnReply := NewDict()
	warnReply.Set("warning", Str("Call-ID not found or tags didn't match"))
	warnReply.Set("result", Str("ok"))

	listReply := NewDict()
	listReply.Set("calls", Strs("c1", "c2")).Set("result", Str("ok"))

	tests := []struct {
		name  string
		reply Value
		want  string
	}{
		{"ping", NewDict(Pair{"result", Str("pong")}), "5323_1 d6:result4:ponge"},
		{"offer", offerReply, "5323_2 d3:sdp140:" + referenceSDPOut + "6:result2:oke"},
		{"answer unknown", errReply, "x9 d6:result5:error12:error-reason15:Unknown call-ide"},
		{"delete unknown", warnReply, "q1 d7:warning38:Call-ID not found or tags didn't match6:result2:oke"},
		{"list", listReply, "7f3b d5:callsl2:c12:c2e6:result2:oke"},
	}
	for _, tt := range tests {
		cookie, want := ngBody(t, tt.want)
		got := tt.reply.AppendTo([]byte(cookie + " "))
		if !bytes.Equal(got, []byte(tt.want)) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
		// And the other way round: the reply bytes decode to the same value.
		v, err := Decode(want, Limits{})
		if err != nil || !v.Equal(tt.reply) {
			t.Errorf("%s: Decode = %v, %v", tt.name, v, err)
		}
	}
}

func TestReferenceRequests(t *testing.T) {
	tests := []struct {
		datagram string
		command  string
		check    func(t *testing.T, v Value)
	}{
		{"5323_1 d7:command4:pinge", "ping", nil},
		{"7f3a d7:command6:delete7:call-id2:c18:from-tag3:ft1e", "delete", func(t *testing.T, v Value) {
			if s, _ := v.GetString("from-tag"); s != "ft1" {
				t.Errorf("from-tag = %q", s)
			}
		}},
		{"7f3b d7:command4:list5:limiti2ee", "list", func(t *testing.T, v Value) {
			if n, ok := v.GetInt("limit"); !ok || n != 2 {
				t.Errorf("limit = %d, %v", n, ok)
			}
		}},
	}
	for _, tt := range tests {
		_, doc := ngBody(t, tt.datagram)
		v, err := Decode(doc, Limits{})
		if err != nil {
			t.Errorf("%q: %v", tt.datagram, err)
			continue
		}
		if cmd, _ := v.GetString("command"); cmd != tt.command {
			t.Errorf("%q: command = %q", tt.datagram, cmd)
		}
		if tt.check != nil {
			tt.check(t, v)
		}
	}
}

func TestReferenceJSON(t *testing.T) {
	_, doc := ngBody(t, `5323_3 {"command":"ping"}`)
	v, err := FromJSON(doc, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if cmd, _ := v.GetString("command"); cmd != "ping" {
		t.Errorf("command = %q", cmd)
	}
	if got := ToJSON(NewDict(Pair{"result", Str("pong")})); string(got) != `{"result":"pong"}` {
		t.Errorf("reply = %s", got)
	}
}
