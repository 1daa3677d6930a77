package sdp

import (
	"strings"
	"testing"
)

func TestEditAttributes(t *testing.T) {
	const body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\na=sendrecv\r\na=tool:x y\r\n" +
		"m=audio 4000 RTP/AVP 0 101\r\nc=IN IP4 192.0.2.1\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n" +
		"m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=ptime:20\r\n"
	for _, tc := range []struct {
		name  string
		edits AttrEdits
		want  string // body with "|" for line endings
	}{
		{name: "none", edits: nil, want: body},
		{name: "add session and audio, not twice",
			edits: AttrEdits{SessionSection: {Add: []string{"foo", "a=sendrecv"}}, "audio": {Add: []string{"ptime:20", "label:1"}}},
			want: strings.Replace(strings.Replace(body, "a=tool:x y\r\n", "a=tool:x y\r\na=foo\r\n", 1),
				"a=ptime:20\r\nm=video", "a=ptime:20\r\na=label:1\r\nm=video", 1)},
		{name: "remove by name, by name and tag, by whole value",
			edits: AttrEdits{"audio": {Remove: []string{"PTIME", "rtpmap:101", "fmtp:101 0-15"}}, "video": {Remove: []string{"rtpmap:96 VP8/90000"}}},
			want: strings.NewReplacer("a=rtpmap:101 telephone-event/8000\r\n", "", "a=fmtp:101 0-15\r\n", "", "a=ptime:20\r\nm=video", "m=video",
				"a=rtpmap:96 VP8/90000\r\n", "").Replace(body)},
		{name: "a name does not match a longer name",
			edits: AttrEdits{SessionSection: {Remove: []string{"too", "tool:x"}}},
			want:  strings.Replace(body, "a=tool:x y\r\n", "", 1)},
		{name: "substitute, session only",
			edits: AttrEdits{SessionSection: {Substitute: [][2]string{{"sendrecv", "sendonly"}, {"ptime:20", "ptime:40"}}}},
			want:  strings.Replace(body, "a=sendrecv", "a=sendonly", 1)},
		{name: "substitute in every video section",
			edits: AttrEdits{"video": {Substitute: [][2]string{{"ptime:20", "a=ptime:40"}}}},
			want:  strings.TrimSuffix(body, "a=ptime:20\r\n") + "a=ptime:40\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(EditAttributes([]byte(body), tc.edits)); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", show(got), show(tc.want))
			}
		})
	}
}

// TestEditAttributesLineEndings: LF bodies stay LF, and a body without a
// final line ending gets one before an added line.
func TestEditAttributesLineEndings(t *testing.T) {
	edits := AttrEdits{"audio": {Add: []string{"x-new"}}}
	for _, tc := range []struct{ in, want string }{
		{"v=0\nm=audio 1 RTP/AVP 0\na=a\n", "v=0\nm=audio 1 RTP/AVP 0\na=a\na=x-new\n"},
		{"v=0\r\nm=audio 1 RTP/AVP 0\r\na=a", "v=0\r\nm=audio 1 RTP/AVP 0\r\na=a\r\na=x-new\r\n"},
	} {
		if got := string(EditAttributes([]byte(tc.in), edits)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func show(s string) string { return strings.ReplaceAll(s, "\r\n", "|\n") }

// FuzzEditAttributes: any body and edit leave every line that is not an
// attribute in place and in order; edits that change nothing leave the
// body as it was.
func FuzzEditAttributes(f *testing.F) {
	f.Add("v=0\r\ns=-\r\na=x:1 2\r\nm=audio 1 RTP/AVP 0\r\na=ptime:20\r\n", "audio", "ptime", "a=x", "x:1")
	f.Add("m=video 1\na=a\nm=\n", "", "a", "", "")
	f.Fuzz(func(t *testing.T, body, section, remove, add, from string) {
		edits := AttrEdits{strings.ToLower(section): {Remove: []string{remove}, Add: []string{add}, Substitute: [][2]string{{from, "x-sub"}}}}
		out := string(EditAttributes([]byte(body), edits))
		others := func(s string) []string {
			var l []string
			for _, ln := range strings.SplitAfter(s, "\n") {
				if ln = strings.TrimRight(ln, "\r\n"); ln != "" && !strings.HasPrefix(ln, "a=") {
					l = append(l, ln)
				}
			}
			return l
		}
		if a, b := others(body), others(out); strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Fatalf("non-attribute lines changed: %q -> %q", a, b)
		}
		if got := string(EditAttributes([]byte(body), AttrEdits{section: {}})); got != body {
			t.Fatalf("empty edits changed the body: %q -> %q", body, got)
		}
	})
}
