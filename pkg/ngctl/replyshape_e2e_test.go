package ngctl_test

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

var updateShapes = flag.Bool("update", false, "rewrite testdata/*.shape from the replies")

// shape renders v's keys and nesting with the kind of each value in
// place of the value: dictionaries key by key in their order, every
// element of a list of dictionaries, a list of strings as [str].
func shape(v bencode.Value) string {
	var b strings.Builder
	writeShape(&b, v, "")
	return b.String()
}

func writeShape(b *strings.Builder, v bencode.Value, indent string) {
	switch v.Kind {
	case bencode.KindDict:
		for _, kv := range v.Dict {
			switch kv.Value.Kind {
			case bencode.KindDict, bencode.KindList:
				if kv.Value.Len() == 0 || (kv.Value.Kind == bencode.KindList && kv.Value.List[0].Kind != bencode.KindDict) {
					fmt.Fprintf(b, "%s%q: %s\n", indent, kv.Key, kindName(kv.Value))
					continue
				}
				fmt.Fprintf(b, "%s%q: %s\n", indent, kv.Key, kindName(kv.Value))
				writeShape(b, kv.Value, indent+"  ")
			default:
				fmt.Fprintf(b, "%s%q: %s\n", indent, kv.Key, kindName(kv.Value))
			}
		}
	case bencode.KindList:
		for i, e := range v.List {
			fmt.Fprintf(b, "%s[%d]:\n", indent, i)
			writeShape(b, e, indent+"  ")
		}
	}
}

func kindName(v bencode.Value) string {
	switch v.Kind {
	case bencode.KindInt:
		return "int"
	case bencode.KindString:
		return "str"
	case bencode.KindDict:
		if len(v.Dict) == 0 {
			return "{}"
		}
		return "{"
	case bencode.KindList:
		if len(v.List) == 0 {
			return "[]"
		}
		if v.List[0].Kind == bencode.KindString {
			return "[str]"
		}
		return "["
	}
	return "?"
}

// checkShape compares a reply's shape with testdata/name.shape.
func checkShape(t *testing.T, name string, v bencode.Value) {
	t.Helper()
	got := shape(v)
	path := filepath.Join("testdata", name+".shape")
	if *updateShapes {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s reply's shape differs from %s (go test -run %s -update rewrites it):\n%s", name, path, t.Name(), got)
	}
}

// TestReplyShapes runs query, list and statistics against a whole node
// with real media sockets and checks their replies' keys and nesting
// against rtpengine 10.5's (testdata/*.shape) and their numbers against
// the packets sent.
func TestReplyShapes(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 49400, 49599, "--delete-delay=0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	const id, ssrc, sent, payload = "shape-1", uint32(0x5eed), 5, "0123456789abcdef0123"
	testutil.NGOK(t, ctx, c, testutil.NGCall("offer", id, "", testutil.AudioSDP(a)))
	toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", id, "B", testutil.AudioSDP(b)))
	proxyForA := testutil.SDPMediaAddr(t, toA)
	var size int
	for seq := range uint16(sent) {
		pkt := testutil.RTPPacket(ssrc, seq+1, payload)
		size = len(pkt)
		if _, err := a.WriteToUDP(pkt, proxyForA); err != nil {
			t.Fatal(err)
		}
	}

	query := func(extra ...bencode.Pair) bencode.Value {
		t.Helper()
		d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)})
		for _, p := range extra {
			d.Set(p.Key, p.Value)
		}
		r, err := c.Do(ctx, d)
		if res, why := ngclient.Result(r); err != nil || res != "ok" {
			t.Fatalf("query: %s %s %v", res, why, err)
		}
		return r
	}
	// The workers report once a second.
	var q bencode.Value
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		q = query()
		if st := path(q, "tags", "A", "medias", "0", "streams", "0", "stats"); st.Kind == bencode.KindDict {
			if n, _ := st.GetInt("packets"); n == sent {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the packets A sent never showed in query: %v", q)
		}
	}
	checkShape(t, "query", q)

	rtpA := path(q, "tags", "A", "medias", "0", "streams", "0")
	for _, tc := range []struct {
		name string
		got  bencode.Value
		want int64
	}{
		{"A's RTP packets", path(rtpA, "stats", "packets"), sent},
		{"A's RTP bytes", path(rtpA, "stats", "bytes"), int64(sent * size)},
		{"A's RTP errors", path(rtpA, "stats", "errors"), 0},
		{"A's RTP SSRC", path(rtpA, "SSRC"), int64(ssrc)},
		{"A's endpoint port", path(rtpA, "endpoint", "port"), int64(a.LocalAddr().(*net.UDPAddr).Port)},
		{"A's local port", path(rtpA, "local port"), int64(proxyForA.Port)},
		{"totals RTP packets", path(q, "totals", "RTP", "packets"), sent},
		{"totals RTCP packets", path(q, "totals", "RTCP", "packets"), 0},
		{"media index", path(q, "tags", "A", "medias", "0", "index"), 1},
	} {
		if n, ok := tc.got.Int(); !ok || n != tc.want {
			t.Errorf("%s: %v, want %d", tc.name, tc.got, tc.want)
		}
	}
	if lp, _ := path(rtpA, "last packet").Int(); time.Since(time.Unix(lp, 0)) > time.Minute {
		t.Errorf("A's last packet %d, want about now", lp)
	}

	// Tags: the to-tag wins over the from-tag; the party and the one it
	// receives from; an unknown tag, none.
	for _, tc := range []struct {
		name     string
		from, to string
		want     string
	}{
		{"no tag", "", "", "A,B"},
		{"from-tag", "A", "", "A,B"},
		{"to-tag first", "nope", "B", "B,A"},
		{"unknown tag", "nope", "", ""},
	} {
		var extra []bencode.Pair
		if tc.from != "" {
			extra = append(extra, bencode.Pair{Key: "from-tag", Value: bencode.Str(tc.from)})
		}
		if tc.to != "" {
			extra = append(extra, bencode.Pair{Key: "to-tag", Value: bencode.Str(tc.to)})
		}
		tags := path(query(extra...), "tags")
		var keys []string
		for _, kv := range tags.Dict {
			keys = append(keys, kv.Key)
		}
		if got := strings.Join(keys, ","); got != tc.want {
			t.Errorf("query %s: tags %q, want %q", tc.name, got, tc.want)
		}
	}

	testutil.NGOK(t, ctx, c, testutil.NGCall("offer", "shape-2", "", testutil.AudioSDP(a)))
	for _, tc := range []struct {
		name  string
		limit *bencode.Value // nil: no limit key
		want  int
	}{
		{"default", nil, 2},
		{"int", ptr(bencode.Int(1)), 1},
		{"zero", ptr(bencode.Int(0)), 0},
		{"string", ptr(bencode.Str("1")), 1},
		{"not a number", ptr(bencode.Str("one")), 2},
	} {
		d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("list")})
		if tc.limit != nil {
			d.Set("limit", *tc.limit)
		}
		r, err := c.Do(ctx, d)
		if res, why := ngclient.Result(r); err != nil || res != "ok" {
			t.Fatalf("list %s: %s %s %v", tc.name, res, why, err)
		}
		if calls := path(r, "calls"); calls.Kind != bencode.KindList || len(calls.List) != tc.want {
			t.Errorf("list limit %s: calls %v, want %d", tc.name, calls, tc.want)
		}
	}

	r, err := c.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("statistics")}))
	if res, why := ngclient.Result(r); err != nil || res != "ok" {
		t.Fatalf("statistics: %s %s %v", res, why, err)
	}
	checkShape(t, "statistics", r)
	for _, tc := range []struct {
		name     string
		got      bencode.Value
		min, max int64
	}{
		{"sessionsown", path(r, "statistics", "currentstatistics", "sessionsown"), 2, 2},
		{"sessionstotal", path(r, "statistics", "currentstatistics", "sessionstotal"), 2, 2},
		{"offers", path(r, "statistics", "controlstatistics", "totaloffercount"), 2, 2},
		{"answers", path(r, "statistics", "controlstatistics", "proxies", "0", "answercount"), 1, 1},
		{"lists", path(r, "statistics", "controlstatistics", "totallistcount"), 5, 5},
		{"queries", path(r, "statistics", "controlstatistics", "proxies", "0", "querycount"), 5, 1000},
	} {
		if n, ok := tc.got.Int(); !ok || n < tc.min || n > tc.max {
			t.Errorf("statistics %s: %v, want %d to %d", tc.name, tc.got, tc.min, tc.max)
		}
	}
}

// path walks dictionary keys and list indices; a missing step is the
// zero Value.
func path(v bencode.Value, steps ...string) bencode.Value {
	for _, s := range steps {
		if v.Kind == bencode.KindList {
			var i int
			if _, err := fmt.Sscan(s, &i); err != nil || i >= len(v.List) {
				return bencode.Value{}
			}
			v = v.List[i]
			continue
		}
		x, ok := v.Get(s)
		if !ok {
			return bencode.Value{}
		}
		v = x
	}
	return v
}

func ptr[T any](v T) *T { return &v }
