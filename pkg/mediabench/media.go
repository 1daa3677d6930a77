package mediabench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/rtppacket"
)

// Packet layout: an RTP header written by rtppacket (PT 0, no CSRC, no
// extension), then in the payload a run tag (4 bytes), the phase (1 byte),
// 3 bytes of padding and the send time in nanoseconds since the run's base
// time (8 bytes); the rest is zeros. The pay* offsets are within the
// payload.
const (
	payTag      = 0
	payPhase    = 4
	paySendTime = 8
	minPayload  = 16

	phaseWarmup  = 1
	phaseMeasure = 2
)

// socket is one party's UDP socket: it sends to the proxy port the proxy
// gave it and receives what the proxy relays from the other party.
type socket struct {
	fd   int
	port int                   // local port
	dst  unix.RawSockaddrInet4 // the proxy port this party sends to
	ssrc uint32
	seq  uint16
	// enc encrypts what this party sends (its own SRTP key), dec decrypts
	// what it receives (the key the proxy gave it); nil: plain RTP.
	enc, dec *srtp.Context
}

// newSocket opens a non-blocking UDP socket on 127.0.0.1 with a kernel
// chosen port.
func newSocket() (*socket, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	return &socket{fd: fd, port: sa.(*unix.SockaddrInet4).Port}, nil
}

// setDest sets the proxy port this socket sends to.
func (s *socket) setDest(port int) {
	s.dst.Family = unix.AF_INET
	s.dst.Addr = [4]byte{127, 0, 0, 1}
	// sin_port is in network byte order.
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s.dst.Port))[:], uint16(port))
}

// sendOne writes one RTP packet, stamped now, from s to its proxy port.
// buf is the packet buffer, reused between calls; its payload already
// holds the run tag. An SRTP party encrypts the packet into out (with
// room for buf and srtpOverhead) with hdr for pion's parsed header, both
// reused too.
func (s *socket) sendOne(buf, out []byte, hdr *rtp.Header, phase byte, now int64) error {
	s.seq++
	h := rtppacket.RTP{Seq: s.seq, Timestamp: uint32(s.seq) * 160, SSRC: s.ssrc}
	if err := h.WriteHeader(buf); err != nil {
		return err
	}
	pay := buf[rtppacket.HeaderLen:]
	pay[payPhase] = phase
	binary.BigEndian.PutUint64(pay[paySendTime:], uint64(now))
	if s.enc != nil {
		var err error
		if buf, err = s.enc.EncryptRTP(out[:0], buf, hdr); err != nil {
			return err
		}
	}
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
		0, uintptr(unsafe.Pointer(&s.dst)), unix.SizeofSockaddrInet4)
	if e != 0 {
		return e
	}
	return nil
}

// counters are the per-direction packet counts; index 0 is A to B, 1 is
// B to A. They are written by one goroutine and read by others.
type counters struct {
	sent     [2]atomic.Uint64
	received [2]atomic.Uint64
	warmRecv atomic.Uint64
	sendErrs atomic.Uint64
	// srtpFailed: packets that reached an SRTP party and did not decrypt
	// with the key the proxy gave it; srtpClear: those of them that
	// carried this run's payload in the clear (the proxy did not
	// encrypt).
	srtpFailed, srtpClear atomic.Uint64
}

// receiver drains every socket with an epoll loop and recvmmsg, counts
// measured packets per direction and samples their latency.
type receiver struct {
	epfd    int
	socks   []*socket
	tag     uint32
	base    time.Time
	cnt     *counters
	lat     *reservoir
	events  []unix.EpollEvent
	msgs    []unix.Mmsghdr
	iovs    []unix.Iovec
	bufs    [][]byte
	hdr     rtp.Header // pion's parsed header of a packet being decrypted
	stop    atomic.Bool
	done    chan struct{}
	once    sync.Once
	lastErr error
}

const recvBatch = 16

func newReceiver(socks []*socket, tag uint32, base time.Time, cnt *counters) (*receiver, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	r := &receiver{epfd: epfd, socks: socks, tag: tag, base: base, cnt: cnt, lat: newReservoir(100000),
		events: make([]unix.EpollEvent, 256), msgs: make([]unix.Mmsghdr, recvBatch),
		iovs: make([]unix.Iovec, recvBatch), bufs: make([][]byte, recvBatch), done: make(chan struct{})}
	for i := range r.msgs {
		r.bufs[i] = make([]byte, 2048)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(len(r.bufs[i]))
		r.msgs[i].Hdr.Iov = &r.iovs[i]
		r.msgs[i].Hdr.SetIovlen(1)
	}
	for i, s := range socks {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
			_ = unix.Close(epfd)
			return nil, fmt.Errorf("epoll add: %w", err)
		}
	}
	return r, nil
}

// run is the receive loop; it returns after stop is set. It blocks in a
// raw epoll_pwait with a short timeout on a locked thread, which avoids
// the runtime's syscall handoff on every wakeup, and yields after each
// wait so that the garbage collector can stop it.
func (r *receiver) run() {
	defer close(r.done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for !r.stop.Load() {
		n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(r.epfd), uintptr(unsafe.Pointer(&r.events[0])),
			uintptr(len(r.events)), 5, 0, 0)
		if e != 0 {
			if e != unix.EINTR {
				r.lastErr = fmt.Errorf("epoll_pwait: %w", e)
				time.Sleep(time.Millisecond)
			}
			runtime.Gosched()
			continue
		}
		for _, ev := range r.events[:n] {
			r.drain(int(ev.Fd))
		}
		runtime.Gosched()
	}
}

// drain reads what socket i has queued, up to a few batches.
func (r *receiver) drain(i int) {
	s := r.socks[i]
	dir := 1 // packets arriving at A (even index) went from B to A
	if i%2 == 1 {
		dir = 0
	}
	for round := 0; round < 4; round++ {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&r.msgs[0])),
			uintptr(len(r.msgs)), unix.MSG_DONTWAIT, 0, 0)
		if e != 0 {
			if !errors.Is(e, unix.EAGAIN) && e != unix.EINTR {
				r.lastErr = fmt.Errorf("recvmmsg: %w", e)
			}
			return
		}
		now := int64(time.Since(r.base))
		var measured, warm uint64
		for k := 0; k < int(n); k++ {
			b := r.bufs[k][:r.msgs[k].Len]
			if s.dec != nil {
				if b = r.decrypt(s, b); b == nil {
					continue
				}
			}
			phase, sent, ok := r.classify(b)
			if !ok {
				continue
			}
			switch phase {
			case phaseMeasure:
				measured++
				r.lat.add(now - sent)
			case phaseWarmup:
				warm++
			}
		}
		if measured > 0 {
			r.cnt.received[dir].Add(measured)
		}
		if warm > 0 {
			r.cnt.warmRecv.Add(warm)
		}
		if int(n) < len(r.msgs) {
			return
		}
	}
}

// classify reads one received packet: its phase and send time, or ok
// false when it is not a packet of this run. Whatever the proxy under test
// relays reaches it, malformed packets included, and it allocates for none
// of them: rtppacket.Read turns away, with a check of the first byte, the
// packets on which pion's parser would build an error with fmt.Errorf.
func (r *receiver) classify(b []byte) (phase byte, sent int64, ok bool) {
	_, pay, ok := rtppacket.Read(b)
	if !ok || len(pay) < minPayload || binary.BigEndian.Uint32(pay[payTag:]) != r.tag {
		return 0, 0, false
	}
	return pay[payPhase], int64(binary.BigEndian.Uint64(pay[paySendTime:])), true
}

// decrypt authenticates and decrypts an SRTP packet that reached s, in
// place; nil if it fails. It counts the failures and, among them, the
// packets that arrived in the clear.
func (r *receiver) decrypt(s *socket, b []byte) []byte {
	// rtppacket.Read turns away what pion's parser would build an error
	// for with fmt (it allocates for the other failures only).
	if _, pay, ok := rtppacket.Read(b); !ok {
		return nil
	} else if len(pay) >= minPayload && binary.BigEndian.Uint32(pay[payTag:]) == r.tag {
		r.cnt.srtpClear.Add(1)
		r.cnt.srtpFailed.Add(1)
		return nil
	}
	out, err := s.dec.DecryptRTP(b[:0], b, &r.hdr)
	if err != nil {
		r.cnt.srtpFailed.Add(1)
		return nil
	}
	return out
}

// close stops the loop and closes the epoll fd; it may be called again.
func (r *receiver) close() {
	r.once.Do(func() {
		r.stop.Store(true)
		<-r.done
		_ = unix.Close(r.epfd)
	})
}

// sender paces packets over all sockets in turn.
type sender struct {
	socks []*socket
	buf   []byte
	out   []byte     // an SRTP packet being sent
	hdr   rtp.Header // pion's parsed header of it
	next  int
	base  time.Time
	cnt   *counters
}

func newSender(socks []*socket, payload int, tag uint32, base time.Time, cnt *counters) *sender {
	buf := make([]byte, rtppacket.HeaderLen+payload)
	binary.BigEndian.PutUint32(buf[rtppacket.HeaderLen+payTag:], tag)
	return &sender{socks: socks, buf: buf, out: make([]byte, 0, len(buf)+srtpOverhead), base: base, cnt: cnt}
}

// sendNext sends one packet on the next socket in turn.
func (s *sender) sendNext(phase byte) {
	i := s.next
	s.next++
	if s.next == len(s.socks) {
		s.next = 0
	}
	if err := s.socks[i].sendOne(s.buf, s.out, &s.hdr, phase, int64(time.Since(s.base))); err != nil {
		s.cnt.sendErrs.Add(1)
		return
	}
	if phase == phaseMeasure {
		s.cnt.sent[i%2].Add(1) // even index is A, sending A to B
	}
}

// round sends one packet on every socket.
func (s *sender) round(phase byte) {
	for range s.socks {
		s.sendNext(phase)
	}
}

// paced sends measured packets at pps (0: as fast as it can) for d, or
// until stop is closed, and returns the time it sent for.
func (s *sender) paced(pps int, d time.Duration, stop <-chan struct{}) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	var sent uint64
	for {
		select {
		case <-stop:
			return time.Since(start)
		default:
		}
		el := time.Since(start)
		if el >= d {
			return el
		}
		if pps <= 0 {
			for k := 0; k < 64; k++ {
				s.sendNext(phaseMeasure)
			}
			continue
		}
		due := uint64(el) * uint64(pps) / uint64(time.Second)
		for ; sent < due; sent++ {
			s.sendNext(phaseMeasure)
		}
		time.Sleep(500 * time.Microsecond)
	}
}
