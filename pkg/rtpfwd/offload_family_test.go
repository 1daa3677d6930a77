package rtpfwd

import (
	"log/slog"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestServableFamilies: the fast path serves IPv4 and IPv6 sockets (not
// loopback, not link-local), and an entry's addresses must all be of the
// family of the stream's socket (a mixed pair stays in userspace).
func TestServableFamilies(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		local string
		want  bool
	}{
		{"192.0.2.1:30000", true},
		{"[::ffff:192.0.2.1]:30000", true},
		{"[2001:db8::1]:30000", true},
		{"[fd00::1]:30000", true},
		{"127.0.0.1:30000", false},
		{"[::1]:30000", false},
		{"0.0.0.0:30000", false},
		{"[::]:30000", false},
		{"[fe80::1]:30000", false},
		{"[fe80::1%eth0]:30000", false},
	} {
		if got := servable(ap(tc.local)); got != tc.want {
			t.Errorf("servable(%s) = %v, want %v", tc.local, got, tc.want)
		}
	}
	for _, tc := range []struct {
		ep   string
		v4   bool
		want bool
	}{
		{"192.0.2.9:5004", true, true},
		{"[::ffff:192.0.2.9]:5004", true, true},
		{"[2001:db8::9]:5004", true, false},
		{"[2001:db8::9]:5004", false, true},
		{"192.0.2.9:5004", false, false},
		{"[::ffff:192.0.2.9]:5004", false, false},
		{"[fe80::9%eth0]:5004", false, false},
	} {
		if got := sameFamily(ap(tc.ep), tc.v4); got != tc.want {
			t.Errorf("sameFamily(%s, v4=%v) = %v, want %v", tc.ep, tc.v4, got, tc.want)
		}
	}
}

// TestSocketOptsIPv6: the traffic class and hop limit of an IPv6 socket
// are what its offloaded packets carry as TOS and TTL; an IPv4 socket's
// TOS and TTL as before.
func TestSocketOptsIPv6(t *testing.T) {
	o := newOffloader(FastPathOff, "", slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		name            string
		family          int
		level, tos, ttl int
		local           netip.AddrPort
	}{
		{"IPv4", unix.AF_INET, unix.IPPROTO_IP, unix.IP_TOS, unix.IP_TTL, netip.MustParseAddrPort("192.0.2.1:30000")},
		{"IPv6", unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, unix.IPV6_UNICAST_HOPS, netip.MustParseAddrPort("[2001:db8::1]:30000")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, err := unix.Socket(tc.family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
			if err != nil {
				t.Skipf("no %s socket: %v", tc.name, err)
			}
			defer unix.Close(fd)
			if err := unix.SetsockoptInt(fd, tc.level, tc.tos, 184); err != nil {
				t.Fatal(err)
			}
			if err := unix.SetsockoptInt(fd, tc.level, tc.ttl, 17); err != nil {
				t.Fatal(err)
			}
			if tos, ttl := o.socketOpts(tc.local, fd); tos != 184 || ttl != 17 {
				t.Errorf("socketOpts: TOS %d TTL %d, want 184 and 17", tos, ttl)
			}
		})
	}
}
