package ngserver

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// oobSize is the control-message buffer of a UDP read: room for one
// IPV6_PKTINFO (the larger of the two) with slack.
var oobSize = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(unix.SizeofInet4Pktinfo)

// pktDst is where a datagram was sent to, as its packet-info control
// message tells: the local address to answer from, and the interface it
// arrived on. The zero value means unknown.
type pktDst struct {
	addr    netip.Addr
	ifindex int
}

// enablePktinfo asks the kernel to report each datagram's destination
// address (IP_PKTINFO, IPV6_RECVPKTINFO) on a wildcard socket.
func enablePktinfo(c *net.UDPConn, v6 bool) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("packet info: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		}
	}); err != nil {
		return fmt.Errorf("packet info: %w", err)
	}
	if serr != nil {
		name := "IP_PKTINFO"
		if v6 {
			name = "IPV6_RECVPKTINFO"
		}
		return fmt.Errorf("packet info: %w", os.NewSyscallError("setsockopt "+name, serr))
	}
	return nil
}

// parsePktinfo finds the IP_PKTINFO or IPV6_PKTINFO message among the
// control messages oob of one read. It does not allocate and returns the
// zero pktDst when there is none (or oob is malformed).
func parsePktinfo(oob []byte) pktDst {
	const lenSize = unix.SizeofCmsghdr - 8 // cmsg_len is a size_t
	hdr := unix.CmsgLen(0)                 // aligned header size
	for len(oob) >= unix.SizeofCmsghdr {
		var l uint64
		if lenSize == 8 {
			l = binary.NativeEndian.Uint64(oob)
		} else {
			l = uint64(binary.NativeEndian.Uint32(oob))
		}
		if l < uint64(hdr) || l > uint64(len(oob)) {
			return pktDst{}
		}
		level := int32(binary.NativeEndian.Uint32(oob[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
		data := oob[hdr:l]
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }
			// ipi_spec_dst is the local address the packet was received
			// on (the header's destination for unicast), so a reply can
			// be sent from it.
			return pktDst{
				addr:    netip.AddrFrom4([4]byte(data[4:8])),
				ifindex: int(int32(binary.NativeEndian.Uint32(data[0:4]))),
			}
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo { in6_addr ipi6_addr; unsigned ipi6_ifindex; }
			return pktDst{
				addr:    netip.AddrFrom16([16]byte(data[0:16])),
				ifindex: int(binary.NativeEndian.Uint32(data[16:20])),
			}
		}
		next := align(int(l))
		if next >= len(oob) {
			return pktDst{}
		}
		oob = oob[next:]
	}
	return pktDst{}
}

// align rounds n up to the control-message alignment (a pointer's size on
// Linux).
func align(n int) int { return (n + unix.SizeofPtr - 1) &^ (unix.SizeofPtr - 1) }

// replyOOB returns the control message that makes a reply leave from d's
// address, or nil when d says nothing usable (unknown, or a multicast or
// unspecified destination, which cannot be a source: then the kernel picks
// the source).
func replyOOB(d pktDst) []byte {
	a := d.addr
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
		return nil
	}
	if a.Is4() {
		// The outgoing interface stays the routing table's choice.
		return unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: a.As4()})
	}
	info := &unix.Inet6Pktinfo{Addr: a.As16()}
	if a.IsLinkLocalUnicast() {
		// A link-local source is only meaningful with its interface.
		info.Ifindex = uint32(d.ifindex)
	}
	return unix.PktInfo6(info)
}

// freebindConfig binds control sockets with IP_FREEBIND / IPV6_FREEBIND:
// an ng address that is not on the host yet (a failover address that
// keepalived adds at takeover) can be listened on at start, and works the
// moment the address appears.
var freebindConfig = net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if strings.HasSuffix(network, "6") {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return os.NewSyscallError("setsockopt FREEBIND", serr)
	}
	return nil
}}
