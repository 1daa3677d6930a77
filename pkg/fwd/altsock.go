package fwd

// A party's second socket (Stream.AltFD): rtpkit's socket for the party on
// the interface's address of the other family, its second ICE host
// candidate. Both sockets receive the party's packets as one stream;
// what goes to the party leaves from the socket of its address's family.

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// sockets are a stream's socket and, if it has one, its socket of the
// other family, as the control path sends from them.
type sockets struct {
	fd    int
	altFD int  // 0: none
	alt4  bool // altFD is an IPv4 socket
	// fam is fd's family when known (Stream.Local): 4, 6 or 0.
	fam int
}

// socketsOf are s's sockets.
func socketsOf(s *Stream) sockets {
	k := sockets{fd: s.FD}
	if s.Local.IsValid() {
		k.fam = 6
		if s.Local.Addr().Unmap().Is4() {
			k.fam = 4
		}
	}
	if s.AltFD != 0 {
		k.altFD, k.alt4 = s.AltFD, s.AltLocal.Addr().Unmap().Is4()
	}
	return k
}

// owns reports whether fd is one of the stream's sockets.
func (k sockets) owns(fd int) bool { return fd == k.fd || k.altFD != 0 && fd == k.altFD }

// to is the socket that sends to ap: the second one when ap is of its
// family, else the stream's own.
func (k sockets) to(ap netip.AddrPort) int {
	if k.altFD != 0 && ap.Addr().Unmap().Is4() == k.alt4 {
		return k.altFD
	}
	return k.fd
}

// reaches reports whether a stream whose socket has the family (AF_INET
// or AF_INET6) and whose second socket has altFamily (0: none) can send
// to ap: an IPv6 socket reaches IPv4 addresses only in their mapped form,
// an IPv4 one no IPv6 address.
func reaches(family, altFamily int, ap netip.AddrPort) bool {
	return !ap.Addr().Is6() || ap.Addr().Is4In6() || family == unix.AF_INET6 || altFamily == unix.AF_INET6
}

// reaches reports whether one of the sockets can send to ap (true when
// the stream's family is not known).
func (k sockets) reaches(ap netip.AddrPort) bool {
	v4 := ap.Addr().Unmap().Is4()
	switch {
	case k.altFD != 0 && v4 == k.alt4:
		return true
	case k.fam == 0:
		return true
	}
	return v4 == (k.fam == 4)
}
