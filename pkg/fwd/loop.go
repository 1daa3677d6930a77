package fwd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/icecheck"
)

type opCode uint8

const (
	opSet opCode = iota
	opRemove
	opPing  // nothing to apply: Engine.Ping's round trip
	opLatch // Engine.Latch
	opKeys  // the keys of a DTLS handshake (dtls.go)
)

// command is a control request for one loop.
type command struct {
	op     opCode
	id     StreamID
	s      Stream
	family int
	pub    *published
	ep     netip.AddrPort // opLatch
	ice    bool           // opLatch: an ICE nomination (latch.go's nominate)
	done   chan error     // nil when applied inline (manual engines)
}

// wakeSlot is the epoll data of a loop's eventfd.
const wakeSlot = -1

// loop is one forwarding loop: an epoll set, the streams registered in it
// and the preallocated buffers of the packet path. Everything but cmds and
// stop is touched only by the loop's goroutine (or, in a manual engine, by
// the goroutine driving it).
type loop struct {
	// checks is the engine's queue of ICE checks (ice.go).
	checks chan<- ctlJob
	epfd   int
	evfd   int
	batch  int
	waitMs int
	window time.Duration
	setup  func() // Config.ThreadSetup
	// Flood cap: GCRA emission interval and burst tolerance, ns; interval
	// 0 disables the cap.
	interval, tau int64

	events []unix.EpollEvent
	buf    []byte // batch buffers of bufSize bytes
	obuf   []byte // SRTP output buffers, obufSize bytes per message
	rh     []unix.Mmsghdr
	riov   []unix.Iovec
	rname  []unix.RawSockaddrInet6
	rctl   []byte // control buffers, ctlSize bytes per message (SO_RXQ_OVFL)
	sh     []unix.Mmsghdr
	siov   []unix.Iovec
	sname  []unix.RawSockaddrInet6
	evbuf  [8]byte

	slots []*stream // by epoll data
	free  []int32
	byID  map[StreamID]*stream
	calls map[string][]*stream

	now   int64     // wall clock, Unix ns, read once per wakeup
	mono  int64     // monotonic ns since epoch, same reading (flood cap)
	epoch time.Time // loop creation, for mono

	changes chan<- StreamID // Config.Changes

	// Packets held for a peer whose address is not known yet (hold.go).
	holds     []held
	holdBuf   []byte
	holdNext  int
	holdCount int
	touched   []string // calls set since held packets were last released

	// media are the engine's media goroutines (media.go; nil: none); inj
	// and injBuf what they made for this loop to send (injMu), injDo and
	// injDoBuf the loop's swapped-out copies.
	media    *mediaWorkers
	injMu    sync.Mutex
	inj      []injected
	injBuf   []byte
	injDo    []injected
	injDoBuf []byte

	cmds chan *command
	stop atomic.Bool
	tid  atomic.Int32 // the locked thread's id while running (for measurements)
}

func newLoop(idx int, cfg Config) (*loop, error) {
	l := &loop{
		batch:   cfg.Batch,
		waitMs:  int(cfg.Wait / time.Millisecond),
		window:  cfg.LearnWindow,
		setup:   cfg.ThreadSetup,
		events:  make([]unix.EpollEvent, maxEvents),
		buf:     make([]byte, cfg.Batch*bufSize),
		obuf:    make([]byte, cfg.Batch*obufSize),
		rh:      make([]unix.Mmsghdr, cfg.Batch),
		riov:    make([]unix.Iovec, cfg.Batch),
		rname:   make([]unix.RawSockaddrInet6, cfg.Batch),
		rctl:    make([]byte, cfg.Batch*ctlSize),
		sh:      make([]unix.Mmsghdr, cfg.Batch),
		siov:    make([]unix.Iovec, cfg.Batch),
		sname:   make([]unix.RawSockaddrInet6, cfg.Batch),
		byID:    map[StreamID]*stream{},
		calls:   map[string][]*stream{},
		holds:   make([]held, holdSlots),
		holdBuf: make([]byte, holdSlots*bufSize),
		cmds:    make(chan *command, 256),
		epoch:   time.Now(),
		changes: cfg.Changes,
	}
	if cfg.MaxStreamPPS > 0 {
		l.interval = int64(time.Second) / int64(cfg.MaxStreamPPS)
		burst := max(int64(cfg.MaxStreamPPS)/10, int64(cfg.Batch))
		l.tau = (burst - 1) * l.interval
	}
	for i := range cfg.Batch {
		l.riov[i].Base = &l.buf[i*bufSize]
		l.riov[i].SetLen(bufSize)
		h := &l.rh[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&l.rname[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Iov = &l.riov[i]
		h.SetIovlen(1)
		h.Control = &l.rctl[i*ctlSize]
		h.SetControllen(ctlSize)
		h = &l.sh[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&l.sname[i]))
		h.Iov = &l.siov[i]
		h.SetIovlen(1)
	}
	var err error
	l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fwd: loop %d: %w", idx, syscallErr("epoll_create1", err))
	}
	l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(l.epfd)
		return nil, fmt.Errorf("fwd: loop %d: %w", idx, syscallErr("eventfd", err))
	}
	if err := l.ctl(unix.EPOLL_CTL_ADD, l.evfd, wakeSlot); err != nil {
		l.close()
		return nil, fmt.Errorf("fwd: loop %d: eventfd: %w", idx, err)
	}
	return l, nil
}

// close closes the loop's own descriptors.
func (l *loop) close() error {
	return errors.Join(syscallErr("close epoll", unix.Close(l.epfd)), syscallErr("close eventfd", unix.Close(l.evfd)))
}

// wake makes the loop's next (or current) epoll wait return.
func (l *loop) wake() {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	_, _ = unix.Write(l.evfd, b[:]) // EAGAIN: the counter is pending anyway
}

// run is the loop's goroutine. It locks itself to an OS thread and waits
// with a raw epoll_pwait: the goroutine keeps its P and its thread, so no
// handoff happens per wakeup. The call of step after each wait is a
// preemption point (its prologue checks for a pending preemption, which a
// signal interrupting the wait with EINTR or the end of the short timeout
// lets the loop reach), so garbage collection can always stop the loop.
func (l *loop) run(wg *sync.WaitGroup) {
	defer wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l.tid.Store(int32(unix.Gettid()))
	if l.setup != nil {
		l.setup()
	}
	for !l.stop.Load() {
		l.step(l.waitMs)
	}
	l.drain(ErrClosed)
}

// step waits up to msec milliseconds, serves every ready socket once, then
// applies pending control commands. Commands are applied only after all
// events of the wait are handled, so an event never refers to a slot that
// was freed or reused in between.
//
//go:noinline
func (l *loop) step(msec int) {
	n, errno := epollWait(l.epfd, l.events, msec)
	if errno != 0 || n == 0 {
		return // EINTR (preemption signal) or timeout
	}
	t := time.Now()
	l.now, l.mono = t.UnixNano(), int64(t.Sub(l.epoch))
	woken := false
	for i := range n {
		slot := l.events[i].Fd
		if slot == wakeSlot {
			woken = true
			continue
		}
		if s := l.slots[slot]; s != nil {
			fd := s.cfg.FD
			if slot == s.altSlot {
				fd = s.cfg.AltFD
			}
			l.serve(s, fd)
		}
	}
	if woken {
		_, _ = unix.Read(l.evfd, l.evbuf[:])
		l.drain(nil)
		if l.media != nil {
			l.sendInjected()
		}
	}
}

// drain applies (or, with a non-nil err, fails) every queued command,
// then releases the held packets of the calls they changed.
func (l *loop) drain(err error) {
	defer l.releaseTouched()
	for {
		select {
		case c := <-l.cmds:
			if err != nil {
				c.done <- err
			} else {
				c.done <- l.apply(c)
			}
		default:
			return
		}
	}
}

// releaseTouched releases the held packets of the calls set since the
// last time.
func (l *loop) releaseTouched() {
	for _, call := range l.touched {
		l.release(call)
	}
	clear(l.touched)
	l.touched = l.touched[:0]
}

// serve receives up to batch packets from s's socket fd (its own or its
// second one) and forwards them.
//
// It reads the few header bytes it needs itself (the version and the SSRC
// of RTP, the second byte of muxed RTCP) rather than through pion/rtp, as
// rtpkit's tests and load tools do (pkg/rtppacket): this runs on every
// packet, must not allocate, and gets untrusted input, on which pion's
// parser would allocate an error for a malformed header; it also parses
// the whole header (CSRCs, extensions) where two bytes and a word will do.
func (l *loop) serve(s *stream, fd int) {
	n, errno := recvmmsg(fd, l.rh[:l.batch])
	if errno != 0 || n <= 0 {
		// EAGAIN, or a pending socket error (ICMP) that this call cleared.
		return
	}
	now := l.now
	var sink *stream // egress stream of the queued sends
	queued := 0
	media := false // a packet of the batch was accepted
	for i := range n {
		h := &l.rh[i]
		size := int(h.Len)
		flags, namelen := h.Hdr.Flags, h.Hdr.Namelen
		h.Hdr.Namelen = unix.SizeofSockaddrInet6
		if h.Hdr.Controllen != 0 {
			if d, ok := rxqOverflow(l.rctl[i*ctlSize : i*ctlSize+int(h.Hdr.Controllen)]); ok && uint64(d) > s.kdrops {
				s.kdrops = uint64(d)
			}
		}
		h.Hdr.SetControllen(ctlSize) // the kernel wrote what it used, 0 if nothing
		// Drops are decided before a packet counts as media: a truncated
		// packet or one from a refused source is an error, and only the
		// packets strict source lets through take a share of the flood
		// budget (a spoofed flood must not starve the real party). Only
		// the packets left count in Packets, Bytes and LastPacket, which
		// the no-media timers read.
		if flags&unix.MSG_TRUNC != 0 {
			s.errors++
			continue
		}
		pkt := l.buf[i*bufSize : i*bufSize+size]
		if s.demux { // ICE or DTLS: one flag test per packet otherwise
			if s.cfg.ICE.Enabled() && icecheck.IsSTUN(pkt) {
				l.check(s, fd, parseSockaddr(&l.rname[i], namelen), pkt, false) // ice.go
				continue
			}
			if s.cfg.DTLS.Role != 0 && isDTLS(pkt) {
				l.check(s, fd, parseSockaddr(&l.rname[i], namelen), pkt, true) // dtls.go
				continue
			}
		}
		rtcp := s.cfg.Flags&RTCP == 0 && isRTCP(pkt)
		if s.in != nil || s.srtpBroken {
			if s.in.pending() && !s.srtpBroken {
				// An SRTP party whose key is on its way (sent right
				// after the answer's reply): held as it came, and
				// authenticated before anything else when the key is
				// set (hold.go); dropped if it does not come in time.
				l.hold(s, parseSockaddr(&l.rname[i], namelen), rtcp, pkt, true)
				continue
			}
			// Authenticated before anything else looks at it: a packet
			// that fails is neither learned from nor forwarded.
			plain, ok := s.unprotect(pkt, rtcp)
			if !ok {
				s.srtpFails++
				continue
			}
			pkt = plain
		}
		src := parseSockaddr(&l.rname[i], namelen)
		if !s.accept(src, rtcp, now) {
			s.errors++
			continue
		}
		if s.changed {
			s.changed = false
			l.notify(s.id)
		}
		if !s.admit(l.mono, l.interval, l.tau) {
			s.drops++
			continue
		}
		l.count(s, pkt, rtcp)
		media = true
		if s.cfg.Flags&(RTCPSenderSSRC|RTCPReportSSRC) != 0 && (rtcp || s.cfg.Flags&RTCP != 0) {
			mapRTCP(pkt, s.cfg.Flags&RTCPSenderSSRC != 0, s.cfg.Flags&RTCPReportSSRC != 0)
		}
		if (s.cfg.Media != "" || s.cfg.DTMF != 0) && !rtcp && s.cfg.Flags&RTCP == 0 {
			// Transcoding or DTMF events: the media goroutine's (media.go).
			dtmf := uint8(0)
			if s.cfg.DTMF != 0 && len(pkt) >= 12 && pkt[1]&0x7f == s.cfg.DTMF {
				dtmf = s.cfg.DTMF
			}
			if dtmf != 0 && s.cfg.Flags&BlockDTMF != 0 {
				s.mediaSeen = true
				l.toMedia(s, src, pkt, dtmf, "")
				continue
			}
			if s.cfg.Media != "" {
				s.mediaSeen = true
				l.toMedia(s, src, pkt, dtmf, s.cfg.Media)
				continue
			}
			if dtmf != 0 {
				s.mediaSeen = true
				l.toMedia(s, src, pkt, dtmf, "")
			}
		}
		to := s.sink(rtcp)
		if to == nil || to.dest.len == 0 || to.out.pending() {
			if waitsForAddress(to) || to != nil && to.out.pending() || waitsForPeer(s, to) {
				l.hold(s, src, rtcp, pkt, false)
			}
			continue // no sink yet, or a sink that must not get media
		}
		if to.out != nil || to.srtpBroken {
			enc, ok := to.protect(l.obuf[i*obufSize:(i+1)*obufSize], pkt, rtcp || s.cfg.Flags&RTCP != 0)
			if !ok {
				s.errors++
				continue
			}
			pkt = enc
		}
		if to != sink && queued > 0 {
			l.flush(sink, queued)
			queued = 0
		}
		sink = to
		l.queue(queued, to, pkt)
		queued++
	}
	if queued > 0 {
		l.flush(sink, queued)
	}
	if media {
		s.last = now
	}
	s.publish()
}

// queue puts pkt in send slot k, for sink's endpoint (flush sends it).
func (l *loop) queue(k int, to *stream, pkt []byte) {
	l.siov[k].Base = &pkt[0]
	l.siov[k].SetLen(len(pkt))
	l.sname[k] = to.dest.raw
	l.sh[k].Hdr.Namelen = to.dest.len
}

// count adds an accepted packet to its stream's counters, notes its SSRC
// and, for an echoed stream, changes it.
func (l *loop) count(s *stream, pkt []byte, rtcp bool) {
	s.packets++
	s.bytes += uint64(len(pkt))
	if !rtcp && s.cfg.Flags&RTCP == 0 && len(pkt) >= 12 && pkt[0]>>6 == 2 {
		s.ssrc = binary.BigEndian.Uint32(pkt[8:12])
		if s.cfg.Flags&Echo != 0 {
			binary.BigEndian.PutUint32(pkt[8:12], EchoSSRC(s.ssrc))
		}
	}
}

// notify sends id to Config.Changes without blocking.
func (l *loop) notify(id StreamID) {
	if l.changes == nil {
		return
	}
	select {
	case l.changes <- id:
	default:
	}
}

// flush sends the first k queued packets out of sink's socket. A message
// the kernel refuses is counted as an error of the sink and skipped; when
// the socket's send buffer is full the rest are dropped and counted too.
func (l *loop) flush(sink *stream, k int) {
	hs := l.sh[:k]
	failed := uint64(0)
	for len(hs) > 0 {
		m, errno := sendmmsg(sink.sendFD, hs)
		if errno == 0 && m > 0 {
			// After a partial send the next call reports the failing
			// message's error, or sends it after all.
			hs = hs[m:]
			continue
		}
		if errno == unix.EAGAIN || errno == unix.ENOBUFS {
			failed += uint64(len(hs))
			break
		}
		failed++
		hs = hs[1:]
	}
	if failed > 0 {
		sink.errors += failed
		sink.publish()
	}
}
