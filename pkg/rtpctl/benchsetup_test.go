package rtpctl

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fakeNG answers every ng request with result ok, except that it drops
// the first offer from each client address (the client must send it
// again).
func fakeNG(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		var mu sync.Mutex
		seen := map[string]bool{}
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			cookie, doc, ok := bytes.Cut(buf[:n], []byte(" "))
			if !ok {
				continue
			}
			if bytes.Contains(doc, []byte("5:offer")) {
				mu.Lock()
				first := !seen[from.String()]
				seen[from.String()] = true
				mu.Unlock()
				if first {
					continue
				}
			}
			reply := append(append(append([]byte(nil), cookie...), ' '), "d6:result2:oke"...)
			_, _ = pc.WriteTo(reply, from)
		}
	}()
	return pc.LocalAddr().String()
}

// TestBenchSetupRetransmits: both client kinds (blocking sockets for a few
// clients, the netpoller for more clients than CPUs) complete cycles, and
// send a request again when its reply does not come.
func TestBenchSetupRetransmits(t *testing.T) {
	addr := fakeNG(t)
	for _, clients := range []int{1, runtime.GOMAXPROCS(0) + 1} {
		res, err := BenchSetup(context.Background(), addr, clients, 2500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if res.Cycles < 10*clients || res.Errors != 0 {
			t.Fatalf("%d clients: %d cycles, %d errors (%s)", clients, res.Cycles, res.Errors, res.FirstError)
		}
		if max := res.Latency["offer"].Max; max < 400_000 {
			t.Fatalf("%d clients: slowest offer %.0f µs: the dropped offer was not waited for", clients, max)
		}
	}
}
