package rtpfwd_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/fastpath"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// fpNode is one node of a testbed (caller ↔ router ↔ node, veth pairs),
// driven over ng from the callers' namespace.
type fpNode struct {
	tb   *testutil.Testbed
	proc *testutil.Proc
	ng   *ngclient.Client
	addr netip.Addr
}

// startFPNode builds a testbed with one node and starts it with extra
// options, its rtpctl run through wrap (nil: directly).
func startFPNode(t *testing.T, wrap []string, extra ...string) *fpNode {
	t.Helper()
	testutil.RequireRoot(t)
	tb := testutil.NewTestbed(t, testutil.TestbedOptions{Nodes: 1})
	n := tb.Nodes[0]
	ng := n.Addr.String() + ":2223"
	args := append([]string{"--interface=" + n.Addr.String(), "--listen-ng=" + ng, "--port-min=30000", "--port-max=30999", "--delete-delay=0"}, extra...)
	p := tb.StartNodeWrapped(t, 0, wrap, args...)
	return &fpNode{tb: tb, proc: p, ng: tb.NG(t, tb.Callers, ng), addr: n.Addr}
}

// party is a socket of a caller (10.78.0.2–5) in the callers' namespace.
func (n *fpNode) party(t *testing.T, i int) *net.UDPConn {
	return n.tb.UDP(t, n.tb.Callers, n.tb.CallerAddrs[i].String()+":0")
}

func fpSDP(c *net.UDPConn, version int) string {
	a := c.LocalAddr().(*net.UDPAddr)
	return fmt.Sprintf("v=0\r\no=- 1 %d IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", version, a.IP, a.IP, a.Port)
}

var (
	sdpConn  = regexp.MustCompile(`c=IN IP4 (\S+)`)
	sdpAudio = regexp.MustCompile(`m=audio (\d+) `)
)

// sdpDest is where the SDP says to send media.
func sdpDest(t *testing.T, sdp string) *net.UDPAddr {
	t.Helper()
	c, m := sdpConn.FindStringSubmatch(sdp), sdpAudio.FindStringSubmatch(sdp)
	if c == nil || m == nil {
		t.Fatalf("no c= or m=audio in:\n%s", sdp)
	}
	p, _ := strconv.Atoi(m[1])
	return &net.UDPAddr{IP: net.ParseIP(c[1]), Port: p}
}

// fpCall is a call between party a (from-tag A) and b (to-tag B).
type fpCall struct {
	id         string
	a, b       *net.UDPConn
	dstA, dstB *net.UDPAddr // where a and b send to
	sentA      uint64       // packets a sent to dstA (counted by query)
	seq        uint16
}

func (n *fpNode) call(t *testing.T, ctx context.Context, id string, a, b *net.UDPConn, flags ...string) *fpCall {
	t.Helper()
	c := &fpCall{id: id, a: a, b: b}
	offer := testutil.NGCall("offer", id, "", fpSDP(a, 1))
	answer := testutil.NGCall("answer", id, "B", fpSDP(b, 1))
	if len(flags) > 0 {
		offer.Set("flags", bencode.Strs(flags...))
		answer.Set("flags", bencode.Strs(flags...))
	}
	c.dstB = sdpDest(t, testutil.NGOK(t, ctx, n.ng, offer))
	c.dstA = sdpDest(t, testutil.NGOK(t, ctx, n.ng, answer))
	return c
}

// exchange sends one packet each way until both arrive (the call may not
// be installed yet), counting what a sent.
func (c *fpCall) exchange(t *testing.T) {
	t.Helper()
	buf := make([]byte, 2048)
	for _, dir := range []struct {
		src, rcv *net.UDPConn
		dst      *net.UDPAddr
		ssrc     uint32
	}{{c.a, c.b, c.dstA, 0xA}, {c.b, c.a, c.dstB, 0xB}} {
		c.seq++
		want := testutil.RTPPacket(dir.ssrc, c.seq, "exchange")
		ok := false
		for range 50 {
			if _, err := dir.src.WriteToUDP(want, dir.dst); err != nil {
				t.Fatal(err)
			}
			if dir.src == c.a {
				c.sentA++
			}
			_ = dir.rcv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			k, _, err := dir.rcv.ReadFromUDPAddrPort(buf)
			if err == nil && bytes.Equal(buf[:k], want) {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("call %s: packet from %s to %s never reached %s", c.id, dir.src.LocalAddr(), dir.dst, dir.rcv.LocalAddr())
		}
	}
}

// queryStream is one stream of a query reply.
type queryStream struct {
	tag     string
	port    int
	flags   []string
	packets int64
}

func (n *fpNode) query(t *testing.T, ctx context.Context, id string) []queryStream {
	t.Helper()
	r, err := n.ng.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)}))
	if res, why := ngclient.Result(r); err != nil || res != "ok" {
		t.Fatalf("query %s: %s %s %v", id, res, why, err)
	}
	tags, _ := r.Get("tags")
	var out []queryStream
	for _, tp := range tags.Dict {
		medias, _ := tp.Value.Get("medias")
		for _, m := range medias.List {
			streams, _ := m.Get("streams")
			for _, s := range streams.List {
				port, _ := s.GetInt("local port")
				fl, _ := s.Get("flags")
				flags, _ := fl.StringList()
				st, _ := s.Get("stats")
				pk, _ := st.GetInt("packets")
				out = append(out, queryStream{tag: tp.Key, port: int(port), flags: flags, packets: pk})
			}
		}
	}
	return out
}

// waitKernelized waits until query shows every RTP stream of the call as
// kernelized.
func (n *fpNode) waitKernelized(t *testing.T, ctx context.Context, c *fpCall) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ss := n.query(t, ctx, c.id)
		all := len(ss) > 0
		for _, s := range ss {
			if slices.Contains(s.flags, "RTP") && !slices.Contains(s.flags, "kernelized") {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("call %s not offloaded to the fast path after 10 s: %+v", c.id, ss)
		}
		// Packets confirm the endpoints (after the learning window).
		c.exchange(t)
		time.Sleep(200 * time.Millisecond)
	}
}

// udpInDatagrams is the node namespace's UDP InDatagrams counter: every
// datagram delivered to a socket there.
func (n *fpNode) udpInDatagrams(t *testing.T) int64 {
	t.Helper()
	out := n.tb.Nodes[0].NS.Run(t, "cat", "/proc/net/snmp")
	var head []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "InDatagrams" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	t.Fatalf("no Udp InDatagrams in /proc/net/snmp:\n%s", out)
	return 0
}

// burst sends count packets from src to dst (SSRC ssrc, sequence numbers
// from seq0, every gap) and checks that rcv gets every one of them byte
// for byte, from the address from.
func burst(t *testing.T, src *net.UDPConn, dst *net.UDPAddr, rcv *net.UDPConn, from *net.UDPAddr, ssrc uint32, seq0 uint16, count int, gap time.Duration) {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for i := range count {
			_ = rcv.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, f, err := rcv.ReadFromUDP(buf)
			if err != nil {
				got <- fmt.Errorf("packet %d of %d: %w", i+1, count, err)
				return
			}
			want := testutil.RTPPacket(ssrc, seq0+uint16(i), "fast-path-payload-"+strconv.Itoa(i))
			if !bytes.Equal(buf[:k], want) {
				got <- fmt.Errorf("packet %d: got % x, want % x", i+1, buf[:k], want)
				return
			}
			if f.String() != from.String() {
				got <- fmt.Errorf("packet %d came from %s, want %s", i+1, f, from)
				return
			}
		}
		got <- nil
	}()
	for i := range count {
		if _, err := src.WriteToUDP(testutil.RTPPacket(ssrc, seq0+uint16(i), "fast-path-payload-"+strconv.Itoa(i)), dst); err != nil {
			t.Fatal(err)
		}
		time.Sleep(gap)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// silent fails if rcv gets an RTP packet with SSRC ssrc within d.
func silent(t *testing.T, rcv *net.UDPConn, ssrc uint32, d time.Duration, what string) {
	t.Helper()
	buf := make([]byte, 2048)
	_ = rcv.SetReadDeadline(time.Now().Add(d))
	for {
		k, _, err := rcv.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if h, _, ok := rtppacket.Read(buf[:k]); ok && h.SSRC == ssrc {
			t.Fatalf("%s: a packet of SSRC %#x arrived", what, ssrc)
		}
	}
}

// drain reads whatever is queued on c (retries of exchange, packets in
// flight) until it has been quiet for 30 ms.
func drain(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for range 1000 {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		if _, _, err := c.ReadFromUDP(buf); err != nil {
			return
		}
	}
}

// pinnedStreams lists what the node's fast-path maps hold.
func (n *fpNode) pinnedStreams(t *testing.T) map[netip.AddrPort]fastpath.Entry {
	t.Helper()
	fp, err := fastpath.Open(fastpath.Options{PinDir: n.tb.Nodes[0].StateDir + "/run/bpf"})
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	m, err := fp.Streams()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFastPathThroughTheNode: calls set up over ng between callers in one
// namespace and a node in another carry RTP both ways through the
// in-kernel fast path once latched — byte for byte, from the node's
// advertised ports, without a datagram reaching any socket of the node —
// and query counts what was sent. Strict-source, a re-INVITE moving the
// callee and a delete take effect at once.
func TestFastPathThroughTheNode(t *testing.T) {
	n := startFPNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n.proc.WaitMatch(t, testutil.MatchLine(`fast path on`), 30*time.Second)

	plain := n.call(t, ctx, "fp-plain", n.party(t, 0), n.party(t, 1))
	strict := n.call(t, ctx, "fp-strict", n.party(t, 0), n.party(t, 1), "strict-source")
	plain.exchange(t)
	strict.exchange(t)
	n.waitKernelized(t, ctx, plain)
	n.waitKernelized(t, ctx, strict)

	t.Run("offloaded both ways", func(t *testing.T) {
		const count = 300
		before := n.udpInDatagrams(t)
		burst(t, plain.a, plain.dstA, plain.b, plain.dstB, 0xA, 1000, count, time.Millisecond)
		burst(t, plain.b, plain.dstB, plain.a, plain.dstA, 0xB, 1000, count, time.Millisecond)
		plain.sentA += count
		if d := n.udpInDatagrams(t) - before; d != 0 {
			t.Errorf("%d datagrams reached sockets of the node while %d packets were forwarded: not all went through the fast path", d, 2*count)
		}
		// query's counters (userspace and kernel merged) match what A sent.
		deadline := time.Now().Add(5 * time.Second)
		for {
			var got int64 = -1
			for _, s := range n.query(t, ctx, plain.id) {
				if s.tag == "A" && slices.Contains(s.flags, "RTP") {
					got = s.packets
				}
			}
			if got == int64(plain.sentA) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("query counts %d packets from A, A sent %d", got, plain.sentA)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("strict-source", func(t *testing.T) {
		stranger := n.party(t, 2)
		for i := range 5 {
			if _, err := stranger.WriteToUDP(testutil.RTPPacket(0x5, uint16(i), "stranger"), strict.dstA); err != nil {
				t.Fatal(err)
			}
		}
		silent(t, strict.b, 0x5, 300*time.Millisecond, "a stranger's packets to a strict-source stream")
		burst(t, strict.a, strict.dstA, strict.b, strict.dstB, 0xA, 2000, 20, time.Millisecond)
	})

	t.Run("re-INVITE moves the callee", func(t *testing.T) {
		// B answers a re-INVITE from another address: as with rtpengine, a
		// new remote endpoint gets new local ports on its side, so A is
		// told a new port to send to, and the old one must stop forwarding
		// (it was offloaded, with B's old address as its destination).
		b2 := n.party(t, 3)
		oldDstA := plain.dstA
		plain.dstB = sdpDest(t, testutil.NGOK(t, ctx, n.ng, testutil.NGCall("offer", plain.id, "B", fpSDP(plain.a, 2))))
		plain.dstA = sdpDest(t, testutil.NGOK(t, ctx, n.ng, testutil.NGCall("answer", plain.id, "B", fpSDP(b2, 2))))
		// The record reaches rtp-fwd through the bus: A's packets reach the
		// new address within milliseconds.
		moved := false
		buf := make([]byte, 2048)
		for i := 0; i < 100 && !moved; i++ {
			if _, err := plain.a.WriteToUDP(testutil.RTPPacket(0xA, uint16(3000+i), "after-reinvite"), plain.dstA); err != nil {
				t.Fatal(err)
			}
			_ = b2.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			if _, _, err := b2.ReadFromUDP(buf); err == nil {
				moved = true
			}
		}
		if !moved {
			t.Fatalf("after the re-INVITE, A's packets never reached B's new address; query: %+v", n.query(t, ctx, plain.id))
		}
		drain(b2) // what was in flight
		drain(plain.b)
		for i := range 10 {
			if _, err := plain.a.WriteToUDP(testutil.RTPPacket(0xA, uint16(3200+i), "old-port"), oldDstA); err != nil {
				t.Fatal(err)
			}
		}
		silent(t, plain.b, 0xA, 200*time.Millisecond, "B's old address, through the port the re-INVITE replaced")
		silent(t, b2, 0xA, 10*time.Millisecond, "B's new address, through the port the re-INVITE replaced")
		plain.b = b2
		plain.exchange(t)
		n.waitKernelized(t, ctx, plain) // latched again: back in the kernel
		burst(t, plain.a, plain.dstA, plain.b, plain.dstB, 0xA, 3300, 50, time.Millisecond)
	})

	t.Run("delete", func(t *testing.T) {
		for _, c := range []*fpCall{plain, strict} {
			d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str(c.id)},
				bencode.Pair{Key: "from-tag", Value: bencode.Str("A")})
			testutil.NGOK(t, ctx, n.ng, d)
		}
		time.Sleep(100 * time.Millisecond) // the record's deletion reaches rtp-fwd
		drain(plain.b)
		drain(strict.b)
		for i := range 10 {
			for _, c := range []*fpCall{plain, strict} {
				if _, err := c.a.WriteToUDP(testutil.RTPPacket(0xA, uint16(4000+i), "after-delete"), c.dstA); err != nil {
					t.Fatal(err)
				}
			}
		}
		silent(t, plain.b, 0xA, 200*time.Millisecond, "a deleted call")
		silent(t, strict.b, 0xA, 50*time.Millisecond, "a deleted call")
		if m := n.pinnedStreams(t); len(m) != 0 {
			t.Errorf("the fast path's map still holds %d streams after every call ended: %v", len(m), m)
		}
	})
}

// TestFastPathSurvivesRTPFwdKill: offloaded streams keep flowing, with no
// packet lost, while rtp-fwd is killed with -9 and restarted; the
// restarted rtp-fwd adopts them (query still shows them kernelized), and
// deleting the call afterwards empties the kernel's map.
func TestFastPathSurvivesRTPFwdKill(t *testing.T) {
	n := startFPNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := n.call(t, ctx, "fp-kill", n.party(t, 0), n.party(t, 1))
	c.exchange(t)
	n.waitKernelized(t, ctx, c)

	fwdPID := func() int {
		for _, pid := range testutil.Children(n.proc.PID()) {
			if b, err := readFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(b, "rtp-fwd") {
				return pid
			}
		}
		return 0
	}
	old := fwdPID()
	if old == 0 {
		t.Fatal("no rtp-fwd among the node's daemons")
	}

	// 50 packets/s each way for 3 s, rtp-fwd killed after 0.5 s.
	const count = 150
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(500 * time.Millisecond)
		_ = syscall.Kill(old, syscall.SIGKILL)
	}()
	errs := make(chan error, 2)
	for _, dir := range []struct {
		src, rcv  *net.UDPConn
		dst, from *net.UDPAddr
		ssrc      uint32
	}{{c.a, c.b, c.dstA, c.dstB, 0xA}, {c.b, c.a, c.dstB, c.dstA, 0xB}} {
		go func() {
			defer func() {
				if r := recover(); r != nil {
					errs <- fmt.Errorf("%v", r)
				}
			}()
			errs <- streamAndCount(dir.src, dir.dst, dir.rcv, dir.ssrc, count, 20*time.Millisecond)
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	<-done
	if t.Failed() {
		return
	}
	c.sentA += count

	// The restarted rtp-fwd adopted the streams: still kernelized, and the
	// merged counters still cover the kernel's share.
	deadline := time.Now().Add(20 * time.Second)
	for fwdPID() == 0 || fwdPID() == old {
		if time.Now().After(deadline) {
			t.Fatal("rtp-fwd was not restarted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.waitKernelized(t, ctx, c)
	burst(t, c.a, c.dstA, c.b, c.dstB, 0xA, 5000, 50, time.Millisecond)
	if m := n.pinnedStreams(t); len(m) != 2 {
		t.Errorf("the fast path's map holds %d streams, want the call's 2: %v", len(m), m)
	}
	d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str(c.id)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("A")})
	testutil.NGOK(t, ctx, n.ng, d)
	deadline = time.Now().Add(5 * time.Second)
	for len(n.pinnedStreams(t)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after the delete the fast path's map still holds %v", n.pinnedStreams(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamAndCount sends count packets from src to dst every gap and
// returns an error unless rcv got every one of them, in order.
func streamAndCount(src *net.UDPConn, dst *net.UDPAddr, rcv *net.UDPConn, ssrc uint32, count int, gap time.Duration) error {
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for i := range count {
			_ = rcv.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, _, err := rcv.ReadFromUDP(buf)
			if err != nil {
				got <- fmt.Errorf("SSRC %#x: packet %d of %d lost: %w", ssrc, i+1, count, err)
				return
			}
			if want := testutil.RTPPacket(ssrc, uint16(i), "steady"); !bytes.Equal(buf[:k], want) {
				got <- fmt.Errorf("SSRC %#x: packet %d: got % x, want % x", ssrc, i+1, buf[:k], want)
				return
			}
		}
		got <- nil
	}()
	for i := range count {
		if _, err := src.WriteToUDP(testutil.RTPPacket(ssrc, uint16(i), "steady"), dst); err != nil {
			return err
		}
		time.Sleep(gap)
	}
	return <-got
}

// TestFastPathOffAndUnavailable: with --fast-path=off, and without the
// privileges it needs (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN taken away),
// calls are forwarded in userspace and the log says why.
func TestFastPathOffAndUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap []string
		args []string
		log  string
	}{
		{name: "off", args: []string{"--fast-path=off"}, log: `fast path off \(--fast-path=off\)`},
		{name: "no privilege", wrap: []string{"setpriv", "--inh-caps=-all", "--bounding-set=-bpf,-net_admin,-sys_admin,-perfmon"},
			log: `fast path unavailable: forwarding in userspace`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startFPNode(t, tc.wrap, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := n.call(t, ctx, "fp-"+strings.ReplaceAll(tc.name, " ", "-"), n.party(t, 0), n.party(t, 1))
			c.exchange(t)
			n.proc.WaitMatch(t, regexp.MustCompile(tc.log), 10*time.Second)
			time.Sleep(3500 * time.Millisecond) // past the learning window: confirmed, would be offloaded
			c.exchange(t)
			before := n.udpInDatagrams(t)
			burst(t, c.a, c.dstA, c.b, c.dstB, 0xA, 100, 50, time.Millisecond)
			if d := n.udpInDatagrams(t) - before; d < 50 {
				t.Errorf("only %d of 50 packets reached the node's sockets: not forwarded in userspace", d)
			}
			time.Sleep(1500 * time.Millisecond)
			for _, s := range n.query(t, ctx, c.id) {
				if slices.Contains(s.flags, "kernelized") {
					t.Errorf("stream %d kernelized with the fast path %s", s.port, tc.name)
				}
			}
		})
	}
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
