package ngctl

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/calls"
)

// sampleStats is a call with n tags, each with two medias of two streams,
// every value distinct so that a piece written over another shows.
func sampleStats(n int) *calls.CallStats {
	st := &calls.CallStats{Created: time.Unix(1700000000, 5000), LastSignal: time.Unix(1700000005, 0),
		TotalRTP: calls.Counters{Packets: 1, Bytes: 2, Errors: 3, KernelDrops: 4}, TotalRTCP: calls.Counters{Packets: 5}}
	for t := 0; t < n; t++ {
		ts := calls.TagStats{Tag: fmt.Sprintf("tag%d", t), ID: t, Created: st.Created, Subscriptions: []string{fmt.Sprintf("sub%d", t)},
			Subscribers: []string{fmt.Sprintf("s1-%d", t), fmt.Sprintf("s2-%d", t)}}
		if t == 1 {
			ts.Tag, ts.ViaBranch, ts.Label = "", "z9hG4bK1", "callee"
		}
		for m := 0; m < 2; m++ {
			ms := calls.MediaStats{Index: m + 1, Type: "audio", Protocol: "RTP/AVP", Flags: []string{fmt.Sprintf("mf%d%d", t, m)}}
			for c := 0; c < 2; c++ {
				port := 30000 + 100*t + 10*m + c
				ss := calls.StreamStats{LocalPort: port, LocalAddr: netip.MustParseAddr("192.0.2.1"), Family: "IPv4",
					Flags: []string{fmt.Sprintf("f%d", port), "RTP"}, Stats: calls.Counters{Packets: uint64(port), Bytes: uint64(2 * port)}}
				if c == 0 {
					ss.Endpoint = netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), uint16(port+1000))
				}
				ms.Streams = append(ms.Streams, ss)
			}
			ts.Medias = append(ts.Medias, ms)
		}
		st.Tags = append(st.Tags, ts)
	}
	return st
}

// TestStatsIntoLayout: the query keys built from the shared arrays carry
// each tag's, media's and stream's own values (no piece overlaps another)
// and encode as they decode.
func TestStatsIntoLayout(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		st := sampleStats(n)
		r := bencode.NewDict()
		statsInto(&r, st)
		v, err := bencode.Decode(bencode.Encode(r), bencode.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		get := func(v bencode.Value, path ...string) bencode.Value {
			t.Helper()
			for _, k := range path {
				x, ok := v.Get(k)
				if !ok {
					t.Fatalf("no %q on the way to %v", k, path)
				}
				v = x
			}
			return v
		}
		if p, _ := get(v, "totals", "RTP", "kernel drops").Int(); p != 4 {
			t.Errorf("totals RTP kernel drops %d", p)
		}
		tags := get(v, "tags")
		if len(tags.Dict) != n {
			t.Fatalf("%d tags, want %d", len(tags.Dict), n)
		}
		for ti, want := range st.Tags {
			tag := get(tags, want.Key())
			if s, _ := get(tag, "tag").String(); s != want.Tag {
				t.Errorf("tag %d: tag %q", ti, s)
			}
			if subs := get(tag, "subscribers").List; len(subs) != 2 || fmt.Sprint(get(subs[1], "tag").Str) != want.Subscribers[1] {
				t.Errorf("tag %d: subscribers %+v", ti, subs)
			}
			if s := get(get(tag, "subscriptions").List[0], "tag").Str; s != want.Subscriptions[0] {
				t.Errorf("tag %d: subscription %q", ti, s)
			}
			medias := get(tag, "medias").List
			for mi, wm := range want.Medias {
				if f := get(medias[mi], "flags").List; len(f) != 1 || f[0].Str != wm.Flags[0] {
					t.Errorf("tag %d media %d: flags %+v", ti, mi, f)
				}
				streams := get(medias[mi], "streams").List
				for si, ws := range wm.Streams {
					s := streams[si]
					port, _ := get(s, "local port").Int()
					pk, _ := get(s, "stats", "packets").Int()
					fl := get(s, "flags").List
					if int(port) != ws.LocalPort || int(pk) != ws.LocalPort || len(fl) != 2 || fl[0].Str != ws.Flags[0] {
						t.Errorf("tag %d media %d stream %d: port %d packets %d flags %+v, want %d", ti, mi, si, port, pk, fl, ws.LocalPort)
					}
					ep := get(s, "endpoint")
					if ws.Endpoint.IsValid() {
						if p, _ := get(ep, "port").Int(); int(p) != int(ws.Endpoint.Port()) || get(ep, "family").Str != "IPv6" {
							t.Errorf("tag %d media %d stream %d: endpoint %+v", ti, mi, si, ep)
						}
					} else if len(ep.Dict) != 0 {
						t.Errorf("tag %d media %d stream %d: endpoint %+v, want empty", ti, mi, si, ep)
					}
				}
			}
		}
	}
}

func BenchmarkStatsInto(b *testing.B) {
	st := sampleStats(2)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := bencode.NewDict()
		statsInto(&r, st)
	}
}
