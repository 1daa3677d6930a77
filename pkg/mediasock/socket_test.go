package mediasock

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"

	"golang.org/x/sys/unix"
)

var (
	lo1 = netip.MustParseAddr("127.0.0.1")
	lo2 = netip.MustParseAddr("127.0.0.2")
)

func TestBindSamePortTwoAddresses(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	socks := bindSamePort(t, []netip.Addr{lo1, lo2}, Options{})
	for _, s := range socks {
		if got := sockName(t, s); got != s.Local() {
			t.Errorf("getsockname = %s, want %s", got, s.Local())
		}
		if s.Network() != "udp" {
			t.Errorf("Network() = %q", s.Network())
		}
		if got := getInt(t, s, unix.SOL_SOCKET, unix.SO_DOMAIN); got != unix.AF_INET {
			t.Errorf("%s: SO_DOMAIN = %d, want AF_INET", s, got)
		}
		roundTrip(t, s, "hello "+s.String())
	}
	if socks[0].Local().Port() != socks[1].Local().Port() {
		t.Fatalf("ports differ: %s %s", socks[0], socks[1])
	}
}

func TestBindRefused(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	tests := []struct {
		name    string
		network string
		local   string
		want    error
	}{
		{"ipv4 wildcard", "udp", "0.0.0.0:30000", ErrUnspecifiedAddr},
		{"ipv6 wildcard", "udp", "[::]:30000", ErrUnspecifiedAddr},
		{"mapped wildcard", "udp", "[::ffff:0.0.0.0]:30000", ErrUnspecifiedAddr},
		{"udp6 wildcard", "udp6", "[::]:30000", ErrUnspecifiedAddr},
		{"zero port", "udp", "127.0.0.1:0", ErrZeroPort},
		{"tcp", "tcp", "127.0.0.1:30000", ErrUnsupportedNetwork},
		{"empty network", "", "127.0.0.1:30000", ErrUnsupportedNetwork},
		{"udp4 with ipv6", "udp4", "[::1]:30000", ErrInvalidAddr},
		{"udp6 with ipv4", "udp6", "127.0.0.1:30000", ErrInvalidAddr},
		{"udp6 with mapped ipv4", "udp6", "[::ffff:127.0.0.1]:30000", ErrInvalidAddr},
		{"zero addrport", "udp", "", ErrInvalidAddr},
		{"unknown zone", "udp", "[fe80::1%no-such-if0]:30000", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var local netip.AddrPort
			if tt.local != "" {
				local = netip.MustParseAddrPort(tt.local)
			}
			s, err := Bind(tt.network, local, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Bind(%q, %s) succeeded", tt.network, local)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Bind(%q, %s) = %v, want %v", tt.network, local, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "mediasock: bind ") {
				t.Errorf("error lacks context: %v", err)
			}
		})
	}
}

func TestBindInvalidOptions(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	for _, o := range []Options{{RecvBuf: -1}, {SendBuf: -1}, {TOS: -1}, {TOS: 256}} {
		s, err := Bind("udp", netip.AddrPortFrom(lo1, 30000), o)
		if err == nil {
			s.Close()
			t.Errorf("Bind with %+v succeeded", o)
		} else if !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Bind with %+v: %v, want ErrInvalidOption", o, err)
		}
	}
}

func TestBindAddressInUse(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	s := bindSamePort(t, []netip.Addr{lo1}, Options{})[0]
	before := testutil.FDCount(t, 0)
	s2, err := Bind("udp", s.Local(), Options{FreeBind: true, TOS: TOSExpeditedForwarding})
	if err == nil {
		s2.Close()
		t.Fatal("second bind to the same address succeeded")
	}
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("error %v does not wrap EADDRINUSE", err)
	}
	if msg := err.Error(); !strings.Contains(msg, s.Local().String()) || !strings.Contains(msg, "address already in use") {
		t.Errorf("unclear error: %v", msg)
	}
	if after := testutil.FDCount(t, 0); after != before {
		t.Errorf("failed bind leaked descriptors: %d before, %d after", before, after)
	}
	// The same port on another address is fine.
	s3, err := Bind("udp", netip.AddrPortFrom(lo2, s.Local().Port()), Options{})
	if err != nil {
		t.Fatalf("bind on %s: %v", lo2, err)
	}
	s3.Close()
}

func TestBindMappedIPv4(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	s := bindSamePort(t, []netip.Addr{lo1}, Options{})[0]
	port := s.Local().Port()
	s.Close()
	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), port)
	m, err := Bind("udp", mapped, Options{})
	if err != nil {
		t.Fatalf("bind %s: %v", mapped, err)
	}
	defer m.Close()
	if want := netip.AddrPortFrom(lo1, port); m.Local() != want || sockName(t, m) != want {
		t.Errorf("Local() = %s, getsockname = %s, want %s", m.Local(), sockName(t, m), want)
	}
	if got := getInt(t, m, unix.SOL_SOCKET, unix.SO_DOMAIN); got != unix.AF_INET {
		t.Errorf("SO_DOMAIN = %d, want AF_INET", got)
	}
}

func TestOptionsReadBack(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	const buf = 1 << 20
	opts := Options{FreeBind: true, RecvBuf: buf, SendBuf: buf, TOS: TOSExpeditedForwarding, RxqOvfl: true}
	tests := []struct {
		name  string
		addr  netip.Addr
		tos   [2]int // level, option
		free  [2]int
		proto int
	}{
		{"ipv4", lo1, [2]int{unix.IPPROTO_IP, unix.IP_TOS}, [2]int{unix.IPPROTO_IP, unix.IP_FREEBIND}, unix.AF_INET},
		{"ipv6", netip.IPv6Loopback(), [2]int{unix.IPPROTO_IPV6, unix.IPV6_TCLASS}, [2]int{unix.IPPROTO_IPV6, unix.IPV6_FREEBIND}, unix.AF_INET6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tt.addr, 0)))
			if err != nil {
				t.Skipf("no %s loopback: %v", tt.name, err)
			}
			port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
			probe.Close()
			s, err := Bind("udp", netip.AddrPortFrom(tt.addr, port), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := getInt(t, s, tt.tos[0], tt.tos[1]); got != TOSExpeditedForwarding {
				t.Errorf("TOS/TCLASS = %d, want %d", got, TOSExpeditedForwarding)
			}
			// The address is on the host: FREEBIND is not needed, so not set
			// (TestNetNSFreeBind binds to a missing address).
			if got := getInt(t, s, tt.free[0], tt.free[1]); got != 0 {
				t.Errorf("FREEBIND = %d on a local address, want 0 (set only when the address is missing)", got)
			}
			if got := getInt(t, s, unix.SOL_SOCKET, unix.SO_RXQ_OVFL); got != 1 {
				t.Errorf("SO_RXQ_OVFL = %d, want 1", got)
			}
			for _, o := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF} {
				if got := getInt(t, s, unix.SOL_SOCKET, o); got < buf {
					t.Errorf("buffer option %d = %d, want >= %d", o, got, buf)
				}
			}
			if got := getInt(t, s, unix.SOL_SOCKET, unix.SO_DOMAIN); got != tt.proto {
				t.Errorf("SO_DOMAIN = %d, want %d", got, tt.proto)
			}
			if tt.proto == unix.AF_INET6 {
				if got := getInt(t, s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); got != 1 {
					t.Errorf("IPV6_V6ONLY = %d, want 1", got)
				}
			}
			fl := getInt(t, s, unix.SOL_SOCKET, unix.SO_TYPE)
			if fl != unix.SOCK_DGRAM {
				t.Errorf("SO_TYPE = %d", fl)
			}
			if err := s.Control(func(fd int) error {
				fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
				if err == nil && fl&unix.O_NONBLOCK == 0 {
					t.Error("socket is blocking")
				}
				fdfl, err2 := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
				if err2 == nil && fdfl&unix.FD_CLOEXEC == 0 {
					t.Error("socket is not close-on-exec")
				}
				return errors.Join(err, err2)
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBufferFallback simulates a process without CAP_NET_ADMIN: the FORCE
// options fail and the plain ones must be used.
func TestBufferFallback(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	var plain []int
	orig := setsockoptInt
	t.Cleanup(func() { setsockoptInt = orig })
	setsockoptInt = func(fd, level, opt, value int) error {
		switch opt {
		case unix.SO_RCVBUFFORCE, unix.SO_SNDBUFFORCE:
			return unix.EPERM
		case unix.SO_RCVBUF, unix.SO_SNDBUF:
			plain = append(plain, opt)
		}
		return orig(fd, level, opt, value)
	}
	s := bindSamePort(t, []netip.Addr{lo1}, Options{RecvBuf: 65536, SendBuf: 65536})[0]
	if len(plain) != 2 {
		t.Errorf("plain buffer options set: %v, want SO_RCVBUF and SO_SNDBUF", plain)
	}
	if got := getInt(t, s, unix.SOL_SOCKET, unix.SO_RCVBUF); got < 65536 {
		t.Errorf("SO_RCVBUF = %d", got)
	}

	// A failing option closes the socket and names the option.
	setsockoptInt = func(fd, level, opt, value int) error {
		if opt == unix.IP_TOS {
			return unix.EINVAL
		}
		return orig(fd, level, opt, value)
	}
	before := testutil.FDCount(t, 0)
	if _, err := Bind("udp", netip.AddrPortFrom(lo1, s.Local().Port()+1), Options{TOS: 184}); err == nil || !strings.Contains(err.Error(), "IP_TOS=184") {
		t.Errorf("Bind with failing IP_TOS: %v", err)
	}
	if after := testutil.FDCount(t, 0); after != before {
		t.Errorf("failed option leaked descriptors: %d before, %d after", before, after)
	}
}

func TestDupAndClose(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	s := bindSamePort(t, []netip.Addr{lo1}, Options{})[0]
	fd, err := s.Dup()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("dup is not close-on-exec (flags %#x, %v)", fl, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	if ap, _ := addrPort(sa); ap != s.Local() {
		t.Errorf("dup bound to %s, want %s", ap, s.Local())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if _, err := s.Dup(); !errors.Is(err, ErrClosed) {
		t.Errorf("Dup after Close = %v, want ErrClosed", err)
	}
	if _, err := s.PacketConn(); !errors.Is(err, ErrClosed) {
		t.Errorf("PacketConn after Close = %v, want ErrClosed", err)
	}
	// The duplicate still holds the socket: the port stays bound.
	if s2, err := Bind("udp", s.Local(), Options{}); err == nil {
		s2.Close()
		t.Error("port was released although a duplicate is open")
	}
}

func TestFromFD(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	s := bindSamePort(t, []netip.Addr{lo1}, Options{})[0]
	other := bindSamePort(t, []netip.Addr{lo2}, Options{})[0]

	tests := []struct {
		name    string
		network string
		local   netip.AddrPort
		wantErr error
	}{
		{"exact", "udp", s.Local(), nil},
		{"mapped metadata", "udp", netip.AddrPortFrom(netip.AddrFrom16(lo1.As16()), s.Local().Port()), nil},
		{"address from kernel", "udp", netip.AddrPort{}, nil},
		{"wrong address", "udp", other.Local(), ErrNotMediaSocket},
		{"wrong port", "udp", netip.AddrPortFrom(lo1, s.Local().Port()+1), ErrNotMediaSocket},
		{"tcp", "tcp", s.Local(), ErrUnsupportedNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testutil.FDCount(t, 0)
			fd, err := s.Dup()
			if err != nil {
				t.Fatal(err)
			}
			w, err := FromFD(fd, tt.network, tt.local)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("FromFD = %v, want %v", err, tt.wantErr)
				}
				if w != nil {
					w.Close()
				}
				if after := testutil.FDCount(t, 0); after != before {
					t.Errorf("FromFD error left the descriptor open: %d before, %d after", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if w.Local() != s.Local() || w.Network() != "udp" {
				t.Errorf("worker socket %s, want %s", w, s)
			}
			roundTrip(t, w, "via worker")
		})
	}

	// Descriptors that are not bound UDP sockets.
	notMedia := map[string]func() (int, error){
		"tcp socket": func() (int, error) {
			return unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		},
		"unbound udp": func() (int, error) {
			return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		},
		"wildcard udp": func() (int, error) {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				err = unix.Bind(fd, &unix.SockaddrInet4{})
			}
			return fd, err
		},
		"pipe": func() (int, error) {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				return -1, err
			}
			unix.Close(p[1])
			return p[0], nil
		},
	}
	for name, mk := range notMedia {
		t.Run(name, func(t *testing.T) {
			before := testutil.FDCount(t, 0)
			fd, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			if w, err := FromFD(fd, "udp", netip.AddrPort{}); !errors.Is(err, ErrNotMediaSocket) {
				t.Errorf("FromFD(%s) = %v, want ErrNotMediaSocket", name, err)
				if w != nil {
					w.Close()
				}
			}
			if after := testutil.FDCount(t, 0); after != before {
				t.Errorf("descriptor not closed on error: %d before, %d after", before, after)
			}
		})
	}
}

func TestBindPair(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	probe := bindSamePort(t, []netip.Addr{lo1}, Options{})[0]
	port := int(probe.Local().Port() &^ 1)
	probe.Close()
	var rtp, rtcp *Socket
	var err error
	for range 20 {
		rtp, rtcp, err = BindPair(lo1, port, Options{TOS: TOSExpeditedForwarding})
		if !errors.Is(err, unix.EADDRINUSE) {
			break
		}
		port += 2
	}
	if err != nil {
		t.Fatal(err)
	}
	if int(rtp.Local().Port()) != port || int(rtcp.Local().Port()) != port+1 {
		t.Errorf("pair %s, %s, want ports %d, %d", rtp, rtcp, port, port+1)
	}
	rtp.Close()

	// RTCP port taken: the pair fails and the RTP port is released again.
	before := testutil.FDCount(t, 0)
	if _, _, err := BindPair(lo1, port, Options{}); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("BindPair with RTCP port in use = %v, want EADDRINUSE", err)
	}
	if after := testutil.FDCount(t, 0); after != before {
		t.Errorf("partial BindPair leaked descriptors: %d before, %d after", before, after)
	}
	again, err := Bind("udp", netip.AddrPortFrom(lo1, uint16(port)), Options{})
	if err != nil {
		t.Errorf("RTP port not released after failed pair: %v", err)
	} else {
		again.Close()
	}
	rtcp.Close()

	for _, p := range []int{0, -1, 65535, 70000} {
		if _, _, err := BindPair(lo1, p, Options{}); err == nil {
			t.Errorf("BindPair port %d succeeded", p)
		}
	}
}

// TestRxqOvfl checks that with RxqOvfl the kernel reports its drop counter
// once the receive buffer has overflowed.
func TestRxqOvfl(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	// The smallest buffer the kernel allows holds only a few datagrams.
	s := bindSamePort(t, []netip.Addr{lo1}, Options{RxqOvfl: true, RecvBuf: 1})[0]
	cli, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.Local()))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	payload := make([]byte, 1000)
	const sent = 200
	for range sent {
		if _, err := cli.Write(payload); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	pc, err := s.PacketConn()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc := pc.(*net.UDPConn)
	buf := make([]byte, 2048)
	oob := make([]byte, unix.CmsgSpace(4))
	// read returns the drop counter carried by the next datagram, if any.
	read := func(wait time.Duration) (drops uint32, ok bool, err error) {
		uc.SetReadDeadline(time.Now().Add(wait))
		_, oobn, _, _, err := uc.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			return 0, false, err
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return 0, false, err
		}
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
				return binary.NativeEndian.Uint32(m.Data), true, nil
			}
		}
		return 0, false, nil
	}
	// Everything that was queued was queued before the first drop.
	received := 0
	for received < sent {
		if _, _, err := read(200 * time.Millisecond); err != nil {
			break // queue drained
		}
		received++
	}
	if received == 0 || received == sent {
		t.Fatalf("received %d of %d datagrams; expected some drops", received, sent)
	}
	// The next datagram carries the cumulative drop count.
	if _, err := cli.Write(payload); err != nil {
		t.Fatalf("send: %v", err)
	}
	drops, ok, err := read(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !ok || int(drops) != sent-received {
		t.Errorf("drop counter %d (present %v), want %d (sent %d, received %d)", drops, ok, sent-received, sent, received)
	}
}
