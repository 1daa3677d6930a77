package ngctl

import (
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

// TestSDPAttr: sdp-attr edits the attribute lines of the SDP rtpkit
// writes, as a dictionary or as flags (rtpp-flags sends those), at the
// session level and per media type; what cannot be used is named in the
// reply's warning and the rest still applies.
func TestSDPAttr(t *testing.T) {
	p := newTestProtocol()
	const in = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=tool:phone 1.0\r\n" +
		"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n" +
		"m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
	for i, tt := range []struct {
		name    string
		extra   []bencode.Pair
		has     []string // lines in the SDP
		hasNot  []string
		warning string
	}{
		{name: "dictionary",
			extra: []bencode.Pair{{Key: "sdp-attr", Value: bencode.NewDict(
				bencode.Pair{Key: "none", Value: bencode.NewDict(bencode.Pair{Key: "add", Value: bencode.Strs("x-session")},
					bencode.Pair{Key: "substitute", Value: bencode.List(bencode.Strs("tool:phone 1.0", "tool:rtpkit"))})},
				bencode.Pair{Key: "audio", Value: bencode.NewDict(bencode.Pair{Key: "remove", Value: bencode.Strs("fmtp:101", "ptime")},
					bencode.Pair{Key: "add", Value: bencode.Strs("ptime:30")})},
				bencode.Pair{Key: "video", Value: bencode.NewDict(bencode.Pair{Key: "add", Value: bencode.Strs("x-video")})})}},
			has:    []string{"t=0 0\r\na=tool:rtpkit\r\na=x-session\r\nm=audio", "\r\na=ptime:30\r\nm=video", "a=x-video\r\n"},
			hasNot: []string{"a=fmtp:101", "a=ptime:20", "a=tool:phone"}},
		{name: "flags", extra: []bencode.Pair{{Key: "flags", Value: bencode.Strs("sdp-attr-add-audio-x-a..b", "sdp-attr-remove-global-tool",
			"sdp-attr-substitute-audio-sendrecv>sendonly", "sdp-attr-add-video-x--y")}},
			has:    []string{"a=x-a b\r\n", "a=sendonly\r\na=rtcp:", "a=x=y\r\n"},
			hasNot: []string{"a=tool:"}},
		{name: "what cannot be used is a warning", extra: []bencode.Pair{{Key: "sdp-attr", Value: bencode.NewDict(
			bencode.Pair{Key: "subtitles", Value: bencode.NewDict(bencode.Pair{Key: "add", Value: bencode.Strs("x")})},
			bencode.Pair{Key: "audio", Value: bencode.NewDict(bencode.Pair{Key: "replace", Value: bencode.Strs("x")},
				bencode.Pair{Key: "add", Value: bencode.Strs("x-ok")})})}},
			has: []string{"a=x-ok\r\n"}, warning: `sdp-attr section "subtitles"`},
		{name: "no lines smuggled in", extra: []bencode.Pair{{Key: "sdp-attr", Value: bencode.NewDict(
			bencode.Pair{Key: "audio", Value: bencode.NewDict(bencode.Pair{Key: "add", Value: bencode.Strs("x\r\nm=audio 9 RTP/AVP 0")})})}},
			hasNot: []string{"m=audio 9 "}, warning: "is not one attribute line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("offer")},
				bencode.Pair{Key: "call-id", Value: bencode.Str("sa" + itoa(i))}, bencode.Pair{Key: "from-tag", Value: bencode.Str("a")},
				bencode.Pair{Key: "sdp", Value: bencode.Str(in)})
			for _, e := range tt.extra {
				d.Set(e.Key, e.Value)
			}
			r, err := bencode.Decode([]byte(handle(p, string(bencode.Encode(d)))), bencode.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if res, _ := r.GetString("result"); res != "ok" {
				t.Fatalf("reply %v", r)
			}
			out, _ := r.GetString("sdp")
			for _, h := range tt.has {
				if !strings.Contains(out, h) {
					t.Errorf("no %q in\n%s", h, out)
				}
			}
			for _, h := range tt.hasNot {
				if strings.Contains(out, h) {
					t.Errorf("%q in\n%s", h, out)
				}
			}
			w, _ := r.GetString("warning")
			if (tt.warning == "") != (w == "") || !strings.Contains(w, tt.warning) {
				t.Errorf("warning %q, want one with %q", w, tt.warning)
			}
		})
	}
}
