package rtpctl

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

// fakeNG serves ng on a loopback socket: respond gives the reply document
// to a request (cookie and document), or false to send none.
func fakeNG(t *testing.T, respond func(cookie, doc []byte) (string, bool)) string {
	t.Helper()
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
			cookie, doc, ok := bytes.Cut(buf[:n], []byte(" "))
			if !ok {
				continue
			}
			if reply, ok := respond(cookie, doc); ok {
				_, _ = pc.WriteTo(append(append(append([]byte(nil), cookie...), ' '), reply...), from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// droppingFirstOffers answers every request with result ok, except the
// first offer of each client (cookies "bench-<stamp>-<client>-<seq>"):
// the client must send it again.
func droppingFirstOffers() func(cookie, doc []byte) (string, bool) {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(cookie, doc []byte) (string, bool) {
		if bytes.Contains(doc, []byte("5:offer")) {
			client := string(cookie[:bytes.LastIndexByte(cookie, '-')+1])
			mu.Lock()
			defer mu.Unlock()
			if !seen[client] {
				seen[client] = true
				return "", false
			}
		}
		return "d6:result2:oke", true
	}
}

// TestBenchSetupRetransmits: one client and several multiplexed on the
// load's socket complete cycles, and each sends its request again when
// the reply does not come.
func TestBenchSetupRetransmits(t *testing.T) {
	addr := fakeNG(t, droppingFirstOffers())
	for _, clients := range []int{1, 8} {
		res, err := BenchSetup(context.Background(), addr, clients, 2500*time.Millisecond, 0)
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
	addr := fakeNG(t, func(_, doc []byte) (string, bool) {
		if bytes.Contains(doc, []byte("6:answer")) {
			return "d12:error-reason9:no answer6:result5:errore", true
		}
		return "d6:result2:oke", true
	})
	res, err := BenchSetup(context.Background(), addr, 4, time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cycles != 0 || res.Errors < 4 || !strings.Contains(res.FirstError, "no answer") {
		t.Fatalf("%d cycles, %d errors, first %q", res.Cycles, res.Errors, res.FirstError)
	}
}

// TestBenchSetupHold: with a hold time every call is deleted no earlier
// than that after its answer while the run lasts (at its end the calls
// still held are deleted at once), none is left undeleted, and each delete
// completes a cycle.
func TestBenchSetupHold(t *testing.T) {
	const hold = 150 * time.Millisecond
	var mu sync.Mutex
	answered := map[string]time.Time{}
	deleted := map[string]bool{}
	var early []string
	var end time.Time // of the run, once known
	addr := fakeNG(t, func(_, doc []byte) (string, bool) {
		v, err := bencode.Decode(doc, bencode.Limits{})
		if err != nil {
			return "d6:result5:error12:error-reason3:bade", true
		}
		cmd, _ := v.GetString("command")
		call, _ := v.GetString("call-id")
		mu.Lock()
		defer mu.Unlock()
		switch cmd {
		case "answer":
			answered[call] = time.Now()
		case "delete":
			if at, ok := answered[call]; !ok || (time.Since(at) < hold && time.Now().Before(end)) {
				early = append(early, call)
			}
			deleted[call] = true
		}
		return "d6:result2:oke", true
	})
	mu.Lock()
	end = time.Now().Add(time.Second - 10*time.Millisecond)
	mu.Unlock()
	res, err := BenchSetup(context.Background(), addr, 4, time.Second, hold)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.Errors != 0 || res.Cycles < 20 {
		t.Fatalf("%d cycles, %d errors (%s)", res.Cycles, res.Errors, res.FirstError)
	}
	if len(early) > 0 {
		t.Fatalf("%d calls deleted before their hold time, e.g. %s", len(early), early[0])
	}
	for call := range answered {
		if !deleted[call] {
			t.Fatalf("call %s answered and never deleted", call)
		}
	}
	if res.Cycles != len(deleted) {
		t.Fatalf("%d cycles, %d calls deleted", res.Cycles, len(deleted))
	}
}

func TestDist(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Microsecond)
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 … 1, unsorted
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Latency
	}{
		{"empty", nil, Latency{}},
		{"one", ms(7), Latency{Mean: 7, P50: 7, P90: 7, P99: 7, Max: 7}},
		{"hundred", ms(hundred...), Latency{Mean: 50.5, P50: 51, P90: 91, P99: 100, Max: 100}},
	} {
		if got := dist(tc.in); got != tc.want {
			t.Errorf("%s: dist = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
