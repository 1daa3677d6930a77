package fwd

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/icecheck"
)

// proxySock6 is proxySock on ::1.
func proxySock6(t testing.TB) (int, netip.AddrPort) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
		t.Skip("no ::1:", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, netip.AddrPortFrom(netip.IPv6Loopback(), uint16(sa.(*unix.SockaddrInet6).Port))
}

// TestAltSocket: a party with a second socket of the other family (its
// second ICE candidate) is one stream on both: a check on either socket is
// answered from it, the pair it nominates on the IPv6 one makes media go
// out of that socket to it, and what it sends there reaches the peer.
func TestAltSocket(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	altFD, altAddr := proxySock6(t)
	a6 := party6(t)
	creds := icecheck.Creds{LocalUfrag: "rtpk", LocalPwd: "0123456789abcdefghijklmn", RemoteUfrag: "brws"}
	c.set(t, e, "alt", 1, 2, Stream{ICE: creds, AltFD: altFD, AltLocal: altAddr}, Stream{})

	// A check on the IPv4 socket is answered from it, as before.
	req := stunRequest(t, "rtpk:brws", creds.LocalPwd, false)
	send(t, c.A, c.paA, req.Raw)
	if r := stunResponse(t, c.A, req); r.Type != stun.BindingSuccess {
		t.Fatalf("IPv4 check answered %v", r.Type)
	}

	// The party nominates its IPv6 candidate with our IPv6 one.
	nom := stunRequest(t, "rtpk:brws", creds.LocalPwd, true)
	send(t, a6, altAddr, nom.Raw)
	r, from := stunResponseFrom(t, a6, nom)
	if r.Type != stun.BindingSuccess || from != altAddr {
		t.Fatalf("IPv6 check answered %v from %s, want success from %s", r.Type, from, altAddr)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		st, _ := e.Stats(1)
		if st.Endpoint == addrOf(a6) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint %s, want the nominated %s", st.Endpoint, addrOf(a6))
		}
		time.Sleep(5 * time.Millisecond)
	}
	send(t, c.B, c.pbA, rtpPacket(1, 0xB, []byte("to A over IPv6")))
	expect(t, a6, rtpPacket(1, 0xB, []byte("to A over IPv6")), altAddr)
	send(t, a6, altAddr, rtpPacket(1, 0xA, []byte("to B from IPv6")))
	expect(t, c.B, rtpPacket(1, 0xA, []byte("to B from IPv6")), c.pbA)
	// Counters are published after the batch, just after its packets went.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st, _ := e.Stats(1)
		if st.Packets == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's stream counted %d packets, want 1", st.Packets)
		}
	}

	// Without the second socket the stream forgets it: what arrives there
	// is no longer read, and the IPv6 endpoint cannot be sent to.
	mustSet(t, e, 1, Stream{Call: "alt", FD: c.pa, Peer: 2, Signalled: addrOf(c.A), ICE: creds})
	send(t, a6, altAddr, rtpPacket(2, 0xA, []byte("ignored")))
	expectNothing(t, c.B, 100*time.Millisecond)
}

// A second socket of the stream's own family, or one without its
// address, is refused; so is one another stream uses.
func TestAltSocketRefused(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	fd4, addr4 := proxySock(t)
	fd6, addr6 := proxySock6(t)
	for name, s := range map[string]Stream{
		"same family":  {Call: "x", FD: c.pa, AltFD: fd4, AltLocal: addr4},
		"no address":   {Call: "x", FD: c.pa, AltFD: fd6},
		"its own fd":   {Call: "x", FD: c.pa, AltFD: c.pa, AltLocal: addr6},
		"negative fd":  {Call: "x", FD: c.pa, AltFD: -2, AltLocal: addr6},
		"v6 signalled": {Call: "x", FD: c.pa, Signalled: netip.MustParseAddrPort("[2001:db8::1]:4000")},
	} {
		if err := e.Set(1, s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	mustSet(t, e, 1, Stream{Call: "x", FD: c.pa, AltFD: fd6, AltLocal: addr6, Signalled: netip.MustParseAddrPort("[2001:db8::1]:4000")})
	if err := e.Set(2, Stream{Call: "x", FD: c.pb, AltFD: fd6, AltLocal: addr6}); err == nil {
		t.Error("a second socket of another stream's accepted")
	}
}

// stunResponseFrom reads the answer to req at c and where it came from
// (media held for c's party may come first: it is skipped).
func stunResponseFrom(t testing.TB, c *net.UDPConn, req *stun.Message) (*stun.Message, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 1500)
	for i := 0; i < 5; i++ {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no answer to the check: %v", err)
		}
		if !icecheck.IsSTUN(buf[:n]) {
			continue
		}
		m := &stun.Message{Raw: buf[:n]}
		if err := m.Decode(); err != nil || m.TransactionID != req.TransactionID {
			t.Fatalf("answer %x: %v", buf[:n], err)
		}
		return m, netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	}
	t.Fatal("no answer to the check among the packets that came")
	return nil, netip.AddrPort{}
}
