package ngserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// udpListener is one bound ng UDP socket.
type udpListener struct {
	conn     *net.UDPConn
	local    netip.AddrPort
	wildcard bool // bound to 0.0.0.0 or ::: replies need packet info
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
	l.local = c.LocalAddr().(*net.UDPAddr).AddrPort()
	if l.local.Addr().Is4In6() {
		l.local = netip.AddrPortFrom(l.local.Addr().Unmap(), l.local.Port())
	}
	return l, nil
}

// serveUDP reads datagrams until shutdown. Only the read loop touches buf,
// so every datagram is handled (or copied) before the next read.
func (s *Server) serveUDP(l *udpListener) error {
	buf := make([]byte, s.cfg.udpBuf)
	oob := make([]byte, oobSize)
	failures := 0
	for {
		n, oobn, flags, from, err := l.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if s.isStopping() || isClosedErr(err) {
				return nil
			}
			failures++
			if failures >= maxReadErrors {
				return fmt.Errorf("ngserver: udp %s: %d reads failed in a row, last: %w", l.local, failures, err)
			}
			s.log.Warn("ng udp read failed", "listen", l.local, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		failures = 0
		var dst pktDst
		if l.wildcard {
			dst = parsePktinfo(oob[:oobn])
			if !dst.addr.IsValid() {
				s.log.Debug("ng udp request without packet info; the kernel picks the reply's source", "listen", l.local, "from", from)
			}
		}
		oversized := n == len(buf) || flags&unix.MSG_TRUNC != 0
		s.datagram(l, buf[:n], oversized, from, dst)
	}
}

// datagram handles one received datagram. msg is only valid during the
// call. It blocks only while every handler slot is busy.
func (s *Server) datagram(l *udpListener, msg []byte, oversized bool, from netip.AddrPort, dst pktDst) {
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
	s.run(func() {
		defer s.release()
		if reply := s.answer(e, doc, from); reply != nil {
			s.sendUDP(l, reply, from, dst)
		}
	})
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
