package ngserver

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"time"
)

const (
	// tcpReadSize is a TCP connection's first buffer; it grows up to
	// MaxMessage+1 bytes for long messages.
	tcpReadSize = 16 << 10
	// tcpWriteTimeout bounds writing one reply to a client that does not
	// read.
	tcpWriteTimeout = 10 * time.Second
	// maxAcceptBackoff bounds the pause after a failed accept.
	maxAcceptBackoff = time.Second
)

// listenTCP binds one TCP listener (for ng over TCP or HTTP).
func listenTCP(a string) (net.Listener, netip.AddrPort, error) {
	ap, err := parseListenAddr(a)
	if err != nil {
		return nil, ap, err
	}
	l, err := net.ListenTCP(network("tcp", ap), net.TCPAddrFromAddrPort(ap))
	if err != nil {
		return nil, ap, err // a *net.OpError naming network and address
	}
	return l, unmapPort(l.Addr().(*net.TCPAddr).AddrPort()), nil
}

func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// remoteAddrPort returns a connection's peer address.
func remoteAddrPort(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return unmapPort(a.AddrPort())
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap
}

// serveTCP accepts ng TCP connections until shutdown.
func (s *Server) serveTCP(ln net.Listener) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isStopping() || isClosedErr(err) {
				return nil
			}
			// Such as EMFILE: wait for descriptors to free up.
			backoff = min(max(2*backoff, 5*time.Millisecond), maxAcceptBackoff)
			s.log.Warn("ng tcp accept failed", "listen", ln.Addr(), "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.stopping:
				return nil
			}
			continue
		}
		backoff = 0
		if !s.addConn(c) {
			_ = c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.removeConn(c)
			s.serveTCPConn(c)
		}()
	}
}

// addConn registers a new TCP connection, or refuses it when the cap is
// reached or shutdown has begun.
func (s *Server) addConn(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateServing {
		return false
	}
	if s.tcpConns >= s.cfg.MaxConns {
		s.stats.tcp.rejected.Add(1)
		s.log.Warn("ng tcp connection refused: too many open", "from", c.RemoteAddr(), "max", s.cfg.MaxConns)
		return false
	}
	if ok, first := s.tcpShare.take(clientAddr(c), s.cfg.MaxConnsPerClient); !ok {
		s.stats.tcp.rejected.Add(1)
		if first {
			s.log.Warn("ng tcp connection refused: the client holds its share of connections (logged once until it holds fewer)",
				"from", c.RemoteAddr(), "max_per_client", s.cfg.MaxConnsPerClient)
		}
		return false
	}
	s.conns[c] = struct{}{}
	s.tcpConns++
	return true
}

func (s *Server) removeConn(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		s.tcpShare.give(clientAddr(c))
	}
	delete(s.conns, c)
	s.tcpConns--
	s.mu.Unlock()
}

// serveTCPConn reads and answers the messages of one connection in order
// until it ends, sends garbage, idles too long, or shutdown begins.
func (s *Server) serveTCPConn(c net.Conn) {
	from := remoteAddrPort(c)
	log := s.log.With("from", from, "listen", c.LocalAddr())
	f := newFramer(s.cfg.MaxMessage)
	if s.cfg.framerDone != nil {
		defer func() { s.cfg.framerDone(f.examined()) }()
	}
	for {
		for {
			cookie, doc, err := f.next()
			if errors.Is(err, errNeedMore) {
				break
			}
			if err != nil {
				s.stats.tcp.malformed.Add(1)
				log.Warn("ng tcp connection closed: malformed stream", "err", err)
				return
			}
			s.stats.tcp.requests.Add(1)
			reply := s.exchange(s.baseCtx, cookie, bytes.Clone(doc), from)
			if reply != nil {
				_ = c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
				if _, err := c.Write(reply); err != nil {
					log.Debug("ng tcp reply not sent; closing", "err", err)
					return
				}
			}
			if s.isStopping() {
				return
			}
		}
		room := f.space()
		if len(room) == 0 {
			// Cannot happen: the framer refuses longer messages first.
			s.stats.tcp.malformed.Add(1)
			log.Error("ng tcp buffer full; closing")
			return
		}
		if s.cfg.IdleTimeout > 0 {
			_ = c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		}
		if s.isStopping() {
			return
		}
		k, err := c.Read(room)
		f.add(k)
		if s.cfg.tcpRead != nil {
			s.cfg.tcpRead(k)
		}
		if err != nil && k == 0 {
			var ne net.Error
			switch {
			case s.isStopping() || isClosedErr(err):
			case errors.As(err, &ne) && ne.Timeout():
				log.Debug("ng tcp connection closed: idle", "timeout", s.cfg.IdleTimeout)
			case f.buffered() > 0:
				log.Debug("ng tcp connection ended inside a message", "buffered", f.buffered(), "err", err)
			default:
				log.Debug("ng tcp connection ended", "err", err)
			}
			return
		}
	}
}

// framer cuts the byte stream of one TCP connection into messages: it owns
// the read buffer, which grows up to maxMsg+1 bytes.
type framer struct {
	maxMsg int
	buf    []byte
	r, w   int // buffered bytes are buf[r:w]
	scan   *msgScan
}

func newFramer(maxMsg int) *framer {
	return &framer{maxMsg: maxMsg, buf: make([]byte, min(tcpReadSize, maxMsg+1)), scan: newMsgScan()}
}

// next returns the cookie and document of the next complete message, which
// alias the buffer and stay valid until the next call of space. It returns
// errNeedMore when the buffered bytes end inside a message, and an error
// wrapping errStream when the stream can never become valid.
//
// The scan of an incomplete message resumes where it stopped (msgScan), so
// a message that arrives in many small reads costs O(its length).
func (f *framer) next() (cookie, doc []byte, err error) {
	if f.r == f.w {
		return nil, nil, errNeedMore
	}
	skip, cl, n, err := f.scan.split(f.buf[f.r:f.w], f.maxMsg)
	f.r += skip
	if err != nil {
		return nil, nil, err
	}
	msg := f.buf[f.r : f.r+n]
	f.r += n
	return msg[:cl], msg[cl+1:], nil
}

// space returns the free end of the buffer to read into, after moving a
// partial message to the front or growing the buffer if it is full. It is
// empty only when maxMsg+1 bytes are buffered, which next refuses first.
func (f *framer) space() []byte {
	if f.r == f.w {
		f.r, f.w = 0, 0
	}
	if f.w == len(f.buf) && f.r > 0 {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	if f.w == len(f.buf) && len(f.buf) <= f.maxMsg {
		nb := make([]byte, min(2*len(f.buf), f.maxMsg+1))
		copy(nb, f.buf[:f.w])
		f.buf = nb
	}
	return f.buf[f.w:]
}

// add records that n bytes were read into the slice space returned.
func (f *framer) add(n int) { f.w += n }

// examined is the number of bytes the framer's scans stepped over.
func (f *framer) examined() int { return f.scan.examined }

// buffered is the number of bytes not yet returned as messages.
func (f *framer) buffered() int { return f.w - f.r }
