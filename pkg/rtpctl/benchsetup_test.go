package rtpctl

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeNG answers every ng request with result ok, except that it drops
// the first offer of each client (cookies "bench-<stamp>-<client>-<seq>":
// the client must send it again).
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
				client := string(cookie[:bytes.LastIndexByte(cookie, '-')+1])
				mu.Lock()
				first := !seen[client]
				seen[client] = true
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

// TestBenchSetupRetransmits: one client and several multiplexed on the
// load's socket complete cycles, and each sends its request again when
// the reply does not come.
func TestBenchSetupRetransmits(t *testing.T) {
	addr := fakeNG(t)
	for _, clients := range []int{1, 8} {
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

// TestBenchSetupCountsErrors: a server refusing answers makes every cycle
// an error, reported with its reason.
func TestBenchSetupCountsErrors(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			cookie, doc, _ := bytes.Cut(buf[:n], []byte(" "))
			reply := "d6:result2:oke"
			if bytes.Contains(doc, []byte("6:answer")) {
				reply = "d12:error-reason9:no answer6:result5:errore"
			}
			_, _ = pc.WriteTo(append(append(append([]byte(nil), cookie...), ' '), reply...), from)
		}
	}()
	res, err := BenchSetup(context.Background(), pc.LocalAddr().String(), 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cycles != 0 || res.Errors < 4 || !strings.Contains(res.FirstError, "no answer") {
		t.Fatalf("%d cycles, %d errors, first %q", res.Cycles, res.Errors, res.FirstError)
	}
}
