package portd

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
)

// FuzzRequests sends portd's table a sequence of bus requests (lease,
// return, bind, release), each decoded from JSON as the bus decodes it,
// with bind checked as its handler checks it. Whatever the requests, the
// table stays consistent (its socket count is the sockets its pairs hold,
// every call's pair is in the table) and, once every holder has returned
// its leases and every call's ports are released, no socket and no
// socket descriptor is left.
func FuzzRequests(f *testing.F) {
	f.Add([]byte(`L{"holder":"ng-ctl","family":4,"count":3}
B{"call":"c","pairs":[{"interface":"default","rtp":"127.0.0.1:35100","rtcp":"127.0.0.1:35101"}]}
R{"locals":["127.0.0.1:35100"]}
T{"holder":"ng-ctl","all":true}`))
	f.Add([]byte(`L{"holder":"h","family":4,"count":1000000,"single":true}
B{"call":"x","pairs":[{"rtp":"127.0.0.1:35131"}]}
B{"call":"y","pairs":[{"rtp":"127.0.0.1:35131","rtcp":"127.0.0.1:35132"}]}
T{"holder":"h","rtp":["127.0.0.1:35100","[::1]:35100"]}`))
	f.Add([]byte(`L{"holder":"","family":6,"count":-1,"interface":"nope"}
B{"call":"","pairs":null}
R{"locals":null}`))
	tab := func(t *testing.T) *table { return newTestTable(t, 35100, 35131) }
	f.Fuzz(func(t *testing.T, data []byte) {
		tb := tab(t)
		fds := openFDs(t)
		holders := map[string]bool{}
		for i, line := range bytes.Split(data, []byte("\n")) {
			if i >= 64 || len(line) == 0 {
				break
			}
			body := line[1:]
			switch line[0] {
			case 'L':
				var r portdapi.LeaseRequest
				if json.Unmarshal(body, &r) != nil {
					continue
				}
				holders[r.Holder] = true
				_, _, _ = tb.lease(r.Holder, r.Interface, r.Family, r.Count, r.Single)
			case 'T':
				var r portdapi.ReturnRequest
				if json.Unmarshal(body, &r) != nil || r.Holder == "" {
					continue
				}
				tb.returnLeases(r.Holder, r.RTP, r.All)
			case 'B':
				var r portdapi.BindRequest
				if json.Unmarshal(body, &r) != nil {
					continue
				}
				_, _, _ = tb.bind(r)
			case 'R':
				var r portdapi.ReleaseRequest
				if json.Unmarshal(body, &r) != nil {
					continue
				}
				tb.release(r.Locals)
			}
			checkTable(t, tb)
		}
		for h := range holders {
			tb.returnLeases(h, nil, true)
		}
		// Every call's pairs, sockets or not (a port another process held
		// is kept as adopting, without a socket, as after a restart).
		var locals []netip.AddrPort
		tb.mu.Lock()
		for _, m := range tb.byCall {
			for base := range m {
				locals = append(locals, base)
			}
		}
		tb.mu.Unlock()
		tb.release(locals)
		checkTable(t, tb)
		tb.mu.Lock()
		n, pairs := tb.nsock, len(tb.pairs)
		tb.mu.Unlock()
		if n != 0 || pairs != 0 {
			t.Fatalf("after every lease returned and every call released: %d sockets, %d pairs", n, pairs)
		}
		if got := openFDs(t); got != fds {
			t.Fatalf("descriptors: %d before the requests, %d after", fds, got)
		}
	})
}

// checkTable fails t if the table's socket count is not the sockets its
// pairs hold, or a call names a pair the table does not have.
func checkTable(t *testing.T, tb *table) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	n := 0
	for base, p := range tb.pairs {
		if p.base != base {
			t.Fatalf("pair %s filed under %s", p.base, base)
		}
		if p.rtp != nil {
			n++
		}
		if p.rtcp != nil {
			n++
		}
	}
	if n != tb.nsock {
		t.Fatalf("table counts %d sockets, its pairs hold %d", tb.nsock, n)
	}
	for c, m := range tb.byCall {
		for base, p := range m {
			if tb.pairs[base] != p || p.call != c {
				t.Fatalf("call %q names pair %s that the table does not give it", c, base)
			}
		}
	}
}

// openFDs counts the process's socket descriptors (the fuzzing engine's
// own files and pipes come and go).
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}
