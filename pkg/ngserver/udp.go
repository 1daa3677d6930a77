package ngserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// udpListener is one bound ng UDP socket.
type udpListener struct {
	conn     *net.UDPConn
	local    netip.AddrPort
	wildcard bool // bound to 0.0.0.0 or ::: replies need packet info
	// rc reaches the socket for the blocking reads; busy counts the
	// readers answering a request themselves.
	rc   syscall.RawConn
	busy atomic.Int32
}

// maxReadErrors is how many failed reads in a row end a UDP listener.
const maxReadErrors = 100

// parseListenAddr parses "IP:PORT"; an IPv4-mapped IPv6 address is
// unmapped.
func parseListenAddr(a string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(a)
	if err != nil {
		return ap, fmt.Errorf("%q: %w", a, ErrBadAddress)
	}
	if ap.Addr().Is4In6() {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap, nil
}

// network returns "udp4"/"tcp4" or "udp6"/"tcp6" for ap (an IPv6 socket is
// then IPv6-only, so 0.0.0.0:P and [::]:P can both be bound).
func network(proto string, ap netip.AddrPort) string {
	if ap.Addr().Is4() {
		return proto + "4"
	}
	return proto + "6"
}

// listenUDP binds one ng UDP socket.
func listenUDP(a string) (*udpListener, error) {
	ap, err := parseListenAddr(a)
	if err != nil {
		return nil, err
	}
	nw := network("udp", ap)
	pc, err := freebindConfig.ListenPacket(context.Background(), nw, ap.String())
	if err != nil {
		return nil, err // a *net.OpError naming network and address
	}
	c := pc.(*net.UDPConn)
	l := &udpListener{conn: c, wildcard: ap.Addr().IsUnspecified()}
	if l.wildcard {
		if err := enablePktinfo(c, ap.Addr().Is6()); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("listen %s %s: %w", nw, ap, err)
		}
	}
	if err := makeBlocking(l); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("listen %s %s: %w", nw, ap, err)
	}
	l.local = c.LocalAddr().(*net.UDPAddr).AddrPort()
	if l.local.Addr().Is4In6() {
		l.local = netip.AddrPortFrom(l.local.Addr().Unmap(), l.local.Port())
	}
	return l, nil
}

// UDP requests are read by blocking system calls on the listener's socket,
// by udpReaders goroutines, and answered on the reading goroutine while
// another reader is left to read: a request then costs one wakeup of the
// thread the kernel hands the datagram to, instead of a netpoller wakeup and
// a hand-over to a worker goroutine (25 against 45 µs per request, measured
// with `rtpctl bench setup` against a bare handler; a third less latency
// through ng-ctl). A datagram that arrives while every other reader is in a
// handler goes to a worker goroutine (see run), so that a slow request
// holds up no other and the readers never outnumber the CPUs by much.
const udpReaders = 2

// udpReadTimeout bounds each blocking read, a safety net for shutdown
// (which wakes the readers by shutting the socket down for reading).
const udpReadTimeout = time.Second

// serveUDP serves the socket with readers until shutdown.
func (s *Server) serveUDP(l *udpListener) error {
	for range udpReaders - 1 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.readUDP(l)
		}()
	}
	return s.readUDP(l)
}

// makeBlocking prepares l's socket for the readers: blocking, with
// udpReadTimeout as receive timeout.
func makeBlocking(l *udpListener) error {
	rc, err := l.conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		tv := unix.NsecToTimeval(udpReadTimeout.Nanoseconds())
		if serr = unix.SetsockoptTimeval(int(fd), unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); serr == nil {
			serr = unix.SetNonblock(int(fd), false)
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("blocking reads: %w", serr)
	}
	l.rc = rc
	return nil
}

// wakeUDP makes the blocked readers of l return (at shutdown): the socket
// stops receiving but can still send the replies of running handlers.
func wakeUDP(l *udpListener) {
	if l.rc == nil {
		return
	}
	_ = l.rc.Control(func(fd uintptr) {
		_ = unix.Shutdown(int(fd), unix.SHUT_RD) // ENOTCONN, but it wakes them
	})
}

// readUDP is one reader: it reads and answers datagrams until shutdown. Only this reader
// touches its buffers, and every datagram is handled (or copied) before
// its next read.
func (s *Server) readUDP(l *udpListener) error {
	buf := make([]byte, s.cfg.udpBuf)
	oob := make([]byte, oobSize)
	failures := 0
	var rerr error
	cerr := l.rc.Control(func(fdp uintptr) {
		fd := int(fdp)
		for {
			n, oobn, flags, sa, err := unix.Recvmsg(fd, buf, oob, 0)
			if s.isStopping() {
				return
			}
			switch err {
			case nil:
			case unix.EINTR:
				continue
			case unix.EAGAIN: // nothing for udpReadTimeout
				continue
			default:
				failures++
				if failures >= maxReadErrors {
					rerr = fmt.Errorf("ngserver: udp %s: %d reads failed in a row, last: %w", l.local, failures, err)
					return
				}
				s.log.Warn("ng udp read failed", "listen", l.local, "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			failures = 0
			from := sockaddrAddrPort(sa)
			if !from.IsValid() {
				continue
			}
			var dst pktDst
			if l.wildcard {
				dst = parsePktinfo(oob[:oobn])
				if !dst.addr.IsValid() {
					s.log.Debug("ng udp request without packet info; the kernel picks the reply's source", "listen", l.local, "from", from)
				}
			}
			oversized := n == len(buf) || flags&unix.MSG_TRUNC != 0
			inline := l.busy.Add(1) < udpReaders
			s.datagram(l, buf[:n], oversized, from, dst, inline)
			l.busy.Add(-1)
		}
	})
	if cerr != nil && !s.isStopping() && !isClosedErr(cerr) {
		return fmt.Errorf("ngserver: udp %s: %w", l.local, cerr)
	}
	return rerr
}

// sockaddrAddrPort converts a datagram's source address; the zero value
// if it is not IPv4 or IPv6.
func sockaddrAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr)
		if a.ZoneId != 0 {
			if ifc, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				ip = ip.WithZone(ifc.Name)
			} else {
				ip = ip.WithZone(strconv.Itoa(int(a.ZoneId)))
			}
		}
		return netip.AddrPortFrom(ip, uint16(a.Port))
	}
	return netip.AddrPort{}
}

// datagram handles one received datagram: on the calling goroutine if
// inline, else on a worker goroutine. msg is only valid during the call. It
// blocks while every handler slot is busy.
func (s *Server) datagram(l *udpListener, msg []byte, oversized bool, from netip.AddrPort, dst pktDst, inline bool) {
	cookie, doc, ok := SplitCookie(msg)
	if oversized {
		s.stats.oversized.Add(1)
		s.log.Warn("ng datagram fills the read buffer; answered with an error", "listen", l.local, "from", from, "size", len(msg), "cookie_found", ok)
		if ok {
			s.sendUDP(l, frame(string(cookie), errorReply(doc, "Message too large")), from, dst)
		}
		return
	}
	if !ok {
		s.stats.udp.malformed.Add(1)
		s.log.Debug("ng datagram without cookie dropped", "listen", l.local, "from", from, "size", len(msg))
		return
	}
	s.stats.udp.requests.Add(1)
	e, owner := s.cache.begin(cookie)
	if !owner {
		s.udpDuplicate(l, e, from, dst)
		return
	}
	if !s.acquire(s.baseCtx, true) {
		s.cache.abandon(e)
		return
	}
	doc = bytes.Clone(doc) // the handler owns it; buf is reused
	if doc == nil {
		doc = []byte{}
	}
	serve := func() {
		defer s.release()
		if reply := s.answer(e, doc, from); reply != nil {
			s.sendUDP(l, reply, from, dst)
		}
	}
	if inline {
		serve()
	} else {
		s.run(serve)
	}
}

// udpDuplicate answers a datagram whose cookie has an entry: at once if the
// reply is there, otherwise when the first request's handler finishes,
// without holding a goroutine meanwhile.
func (s *Server) udpDuplicate(l *udpListener, e *cacheEntry, from netip.AddrPort, dst pktDst) {
	switch s.cache.onDone(e, func(msg []byte) {
		s.stats.hits.Add(1)
		s.sendUDP(l, msg, from, dst)
	}) {
	case waitQueued:
		s.stats.waits.Add(1)
	case waitDone:
		if e.msg != nil {
			s.stats.hits.Add(1)
			s.sendUDP(l, e.msg, from, dst)
		}
	case waitFull:
		s.stats.waits.Add(1)
		s.stats.overflow.Add(1)
		s.log.Debug("ng duplicate dropped: too many waiting for the same cookie", "from", from, "cookie", e.key)
	}
}

// sendUDP sends one framed reply to `to`, from the address the request was
// sent to.
func (s *Server) sendUDP(l *udpListener, msg []byte, to netip.AddrPort, dst pktDst) {
	var oob []byte
	if l.wildcard {
		oob = replyOOB(dst)
	}
	if _, _, err := l.conn.WriteMsgUDPAddrPort(msg, oob, to); err != nil && !isClosedErr(err) {
		s.log.Warn("ng udp reply not sent", "listen", l.local, "to", to, "from_addr", dst.addr, "err", err)
	}
}
