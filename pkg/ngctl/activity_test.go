package ngctl

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
)

// TestActivityNews: news of a socket is that of the worker that reported
// it, else of the worker heard from last; a gap longer than StaleAfter
// restarts "since"; a silent worker is forgotten only while another one
// is heard.
func TestActivityNews(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	s1, s2, s3 := netip.MustParseAddrPort("127.0.0.1:1000"), netip.MustParseAddrPort("127.0.0.1:1002"), netip.MustParseAddrPort("127.0.0.1:1004")
	type step struct {
		at     time.Duration
		worker string
		stream netip.AddrPort
		prune  bool
	}
	for _, c := range []struct {
		name         string
		steps        []step
		ask          netip.AddrPort
		heard, since time.Duration
		ok           bool
	}{
		{"nothing heard", nil, s1, 0, 0, false},
		{"own worker", []step{{0, "a", s1, false}, {time.Second, "a", netip.AddrPort{}, false}, {2 * time.Second, "b", s2, false}}, s1, time.Second, 0, true},
		{"unknown socket: freshest worker", []step{{0, "a", s1, false}, {2 * time.Second, "b", s2, false}}, s3, 2 * time.Second, 2 * time.Second, true},
		{"gap restarts since", []step{{0, "a", s1, false}, {time.Second, "a", s1, false}, {10 * time.Second, "a", netip.AddrPort{}, false}}, s1, 10 * time.Second, 10 * time.Second, true},
		{"gap within StaleAfter keeps since", []step{{0, "a", s1, false}, {fwdapi.StaleAfter, "a", s1, false}}, s1, fwdapi.StaleAfter, 0, true},
		{"outage forgets nobody", []step{{0, "a", s1, false}, {time.Hour, "", netip.AddrPort{}, true}}, s1, 0, 0, true},
		{"silent worker forgotten while another is heard", []step{{0, "a", s1, false}, {time.Hour, "b", s2, false}, {time.Hour, "", netip.AddrPort{}, true}}, s1, time.Hour, time.Hour, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newActivity(slog.New(slog.DiscardHandler))
			now := t0
			a.now = func() time.Time { return now }
			for _, st := range c.steps {
				now = t0.Add(st.at)
				if st.prune {
					a.prune(t0.Add(-time.Hour))
					continue
				}
				msg := fwdapi.Activity{Worker: st.worker}
				if st.stream.IsValid() {
					msg.Streams = []fwdapi.StreamActivity{{Local: st.stream, LastPacket: now}}
				}
				a.take(msg)
			}
			heard, since, ok := a.news(c.ask)
			if ok != c.ok || (ok && (!heard.Equal(t0.Add(c.heard)) || !since.Equal(t0.Add(c.since)))) {
				t.Fatalf("news = %v, %v, %v; want +%v, +%v, %v", heard.Sub(t0), since.Sub(t0), ok, c.heard, c.since, c.ok)
			}
		})
	}
}
