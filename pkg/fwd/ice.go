package fwd

// ICE connectivity checks on the packet path: a stream with ICE
// credentials (Stream.ICE) has the STUN messages its socket receives
// (told apart from RTP, RTCP and DTLS by the first byte, RFC 7983) copied
// to the engine's control path, never answered in the loop: icecheck
// verifies a check and builds the response there, which goes back out of
// the stream's socket to the address the check came from, and a pair the
// peer nominates (USE-CANDIDATE) becomes the stream's endpoint (Latch).
// The loop only copies the datagram into a bounded queue; when the queue
// is full the check is dropped and counted (ICEDropped) and the peer
// retransmits.

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/icecheck"
)

// stunMax is the largest STUN message taken from a media socket (a check
// is about 100 bytes; RFC 8489 keeps STUN under 576 bytes without a path
// MTU known).
const stunMax = 576

// checkQueue is the number of checks waiting for the control path.
const checkQueue = 256

// stunJob is one check on its way to the control path.
type stunJob struct {
	id    StreamID
	fd    int
	src   netip.AddrPort
	creds icecheck.Creds
	n     int
	buf   [stunMax]byte
}

// check queues a STUN message of s's socket for the control path.
func (l *loop) check(s *stream, src netip.AddrPort, pkt []byte) {
	if len(pkt) > stunMax || l.checks == nil {
		s.iceDropped++
		return
	}
	j := stunJob{id: s.id, fd: s.cfg.FD, src: src, creds: s.cfg.ICE, n: len(pkt)}
	copy(j.buf[:], pkt)
	select {
	case l.checks <- j:
	default:
		s.iceDropped++
	}
}

// answerChecks is the control path: it answers the queued checks until
// the queue is closed.
func (e *Engine) answerChecks(q <-chan stunJob) {
	defer close(e.checked)
	for j := range q {
		resp, chk, err := icecheck.Answer(j.buf[:j.n], j.src, j.creds)
		if resp == nil {
			continue
		}
		e.mu.RLock()
		ent := e.streams[j.id]
		live := !e.closed && ent != nil && ent.fd == j.fd
		e.mu.RUnlock()
		if !live {
			continue // the stream went while the check waited
		}
		_ = unix.Sendto(j.fd, resp, 0, sockaddrOf(j.src))
		if err == nil && chk.UseCandidate {
			_ = e.Latch(j.id, j.src)
		}
	}
}

// sockaddrOf is ap as a socket address for the control path (the packet
// path keeps its own raw forms).
func sockaddrOf(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr()
	if a.Is4() || a.Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}
