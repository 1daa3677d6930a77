package portd_test

import (
	"hash/fnv"
	"net/netip"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
)

// callFor returns a call id, from the n-th on, that portd assigns to the
// first of two connected workers (hash of the call id over the sorted ids).
func callFor(first bool, n int) (string, int) {
	for ; ; n++ {
		id := "stall-" + strconv.Itoa(n)
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		if (h.Sum32()%2 == 0) == first {
			return id, n + 1
		}
	}
}

// TestStalledWorkerDoesNotStallPortd: a worker that stops reading its
// hand-off socket (SIGSTOP) while portd sends it the sockets of many calls
// fills the socket's buffer. portd must go on answering and serving the
// other worker; the stalled worker is dropped, and gets its sockets again
// when it reconnects.
func TestStalledWorkerDoesNotStallPortd(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--port-min=24000", "--port-max=27999")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("portd:\n%s", regexp.MustCompile(`(?m)^.*level=DEBUG.*\n`).ReplaceAllString(n.portd.Output(), ""))
		}
	})
	a := n.startWorker("a")
	b := n.startWorker("b")
	deadline := time.Now().Add(10 * time.Second)
	for len(n.list().Workers) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("workers: %+v", n.list().Workers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Signal(syscall.SIGCONT) })

	// 40 calls of 40 pairs for worker a: some 320 KB of hand-off messages,
	// more than a Unix socket's default send buffer (208 KB).
	next := 0
	var all []netip.AddrPort
	var first portdapi.Pair
	for range 40 {
		var id string
		id, next = callFor(true, next)
		pairs := n.lease("", 4, 40)
		if len(pairs) != 40 {
			t.Fatalf("leased %d pairs", len(pairs))
		}
		n.putCall(id, pairs...)
		if len(all) == 0 {
			first = pairs[0]
		}
		all = append(all, pairAddrs(pairs...)...)
	}
	// A call for worker b, after them.
	id, _ := callFor(false, next)
	pb := n.lease("", 4, 1)
	n.putCall(id, pb...)
	n.waitPing()
	b.WaitMatch(t, regexp.MustCompile(`(?m)^add `+regexp.QuoteMeta(pb[0].RTCP.String())+` `), 15*time.Second)
	if got := n.lease("", 4, 1); len(got) != 1 {
		t.Fatalf("lease with a stalled worker: %+v", got)
	}
	n.portd.WaitMatch(t, regexp.MustCompile(`worker not reading.*worker=a`), 10*time.Second)

	// Worker a goes on: it reconnects; every socket is with a worker (the
	// calls that were waiting for one when a was dropped went to b), and
	// a's first call is still a's.
	if err := a.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		ga, gb := addLines(a), addLines(b)
		missing := 0
		for _, l := range all {
			if !ga[l.String()] && !gb[l.String()] {
				missing++
			}
		}
		if missing == 0 && len(n.list().Workers) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sockets with no worker, workers %+v", missing, len(all), n.list().Workers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := echo(t, first.RTP, "x"); got != strconv.Itoa(a.PID())+":x" {
		t.Fatalf("echo through worker a: %q", got)
	}
}
