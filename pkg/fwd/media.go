package fwd

// Media processing beside the loops: transcoding and DTMF events. A
// stream with Stream.Media has its RTP copied by the loop into the queue
// of one of the engine's media goroutines (the same one for a stream, so
// its packets stay in order), which runs the stream's MediaProc
// (rtp-fwd's transcoder, built by Config.Media) and hands what it makes
// back to the loop, which sends it to the peer as it would the party's
// own packet (latching, SRTP and counters stay the loop's). A stream with
// Stream.DTMF has the RFC 4733 packets of that payload type copied there
// too, and the event each makes is reported once (Config.DTMF). Nothing
// of this runs in a loop: a transcoded call never slows down the
// forwarding of the others, and a full queue drops (counted) rather than
// waits.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
)

// MediaProc processes the RTP one party sends before its peer gets it.
// It is used by one goroutine at a time.
type MediaProc interface {
	// Process takes one plain RTP packet and calls emit for each packet
	// the peer is to get, in order; emit's argument is copied.
	Process(pkt []byte, emit func([]byte))
}

// MediaFactory builds the processor of a stream from its Stream.Media.
type MediaFactory func(call string, id StreamID, spec string) (MediaProc, error)

// DTMFEvent is one RFC 4733 event a party sent, reported once it ended.
type DTMFEvent struct {
	Call   string
	Stream StreamID
	// Source is where the party's packets come from.
	Source netip.AddrPort
	// Event is the event code (0–9 digits, 10 '*', 11 '#', 12–15 A–D).
	Event uint8
	// Volume is the event's volume (−dBm0), Duration its length in clock
	// units, Timestamp the RTP timestamp of its start, SSRC the sender's.
	Volume    uint8
	Duration  uint16
	Timestamp uint32
	SSRC      uint32
	// PT is the payload type it came with.
	PT uint8
}

// mediaQueue is the length of each media goroutine's queue.
const mediaQueue = 1024

// mediaJob is one packet (or, with pkt nil, the end of a stream) for a
// media goroutine.
type mediaJob struct {
	loop   *loop
	id     StreamID
	call   string
	spec   string
	dtmf   uint8 // the packet is an RFC 4733 packet of this payload type (0: not)
	src    netip.AddrPort
	pkt    *[bufSize]byte
	n      int
	retire bool
	// inject, if not nil, is a DTMF event to inject (no packet).
	inject *Injection
}

// Injection is a DTMF event to play into what a party sends
// (Engine.InjectDTMF): its code (0–15), volume (−dBm0), duration and the
// pause after it (ms).
type Injection struct {
	Event, Volume   uint8
	Duration, Pause int
}

// Injector is a MediaProc that can play DTMF into the stream it makes
// (pause: the time the party's audio passes after it before the next).
type Injector interface {
	InjectPause(event, volume uint8, durationMs, pauseMs int)
}

var mediaBufs = sync.Pool{New: func() any { return new([bufSize]byte) }}

// mediaWorkers are the engine's media goroutines.
type mediaWorkers struct {
	queues  []chan mediaJob
	seed    maphash.Seed
	factory MediaFactory
	dtmf    func(DTMFEvent)
	wg      sync.WaitGroup
	failed  func(StreamID, error)
	// stop: the engine is closing; queued jobs are dropped, not run.
	stop atomic.Bool
}

func newMediaWorkers(n int, factory MediaFactory, dtmf func(DTMFEvent)) *mediaWorkers {
	m := &mediaWorkers{seed: maphash.MakeSeed(), factory: factory, dtmf: dtmf}
	for range n {
		q := make(chan mediaJob, mediaQueue)
		m.queues = append(m.queues, q)
		m.wg.Add(1)
		go m.run(q)
	}
	return m
}

func (m *mediaWorkers) queueFor(id StreamID) chan mediaJob {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(id))
	return m.queues[maphash.Bytes(m.seed, b[:])%uint64(len(m.queues))]
}

// close ends the goroutines once their queues are empty; no loop may
// queue any more.
func (m *mediaWorkers) close() {
	m.stop.Store(true)
	for _, q := range m.queues {
		close(q)
	}
	m.wg.Wait()
}

// mediaState is a media goroutine's state of one stream.
type mediaState struct {
	spec string
	proc MediaProc
	// pending are injections that came before the processor (it is built
	// at the stream's first packet).
	pending []Injection
	// The RFC 4733 event in progress (its timestamp) and the last one
	// reported, so that an event's repeated end packets report it once.
	evTS, doneTS uint32
	inEvent      bool
	reported     bool
}

func (m *mediaWorkers) run(q chan mediaJob) {
	defer m.wg.Done()
	states := map[StreamID]*mediaState{}
	for j := range q {
		if m.stop.Load() {
			if j.pkt != nil {
				mediaBufs.Put(j.pkt)
			}
			continue
		}
		if j.retire {
			delete(states, j.id)
			continue
		}
		st := states[j.id]
		if st == nil {
			st = &mediaState{}
			states[j.id] = st
		}
		if j.inject != nil {
			if inj, ok := st.proc.(Injector); ok {
				inj.InjectPause(j.inject.Event, j.inject.Volume, j.inject.Duration, j.inject.Pause)
			} else if len(st.pending) < 16 {
				st.pending = append(st.pending, *j.inject)
			}
			continue
		}
		pkt := j.pkt[:j.n]
		if j.dtmf != 0 {
			st.event(m, j, pkt)
		}
		if j.spec != "" {
			if st.spec != j.spec || st.proc == nil {
				st.spec, st.proc = j.spec, nil
				if m.factory != nil {
					p, err := m.factory(j.call, j.id, j.spec)
					if err == nil {
						st.proc = p
						if inj, ok := p.(Injector); ok {
							for _, x := range st.pending {
								inj.InjectPause(x.Event, x.Volume, x.Duration, x.Pause)
							}
							st.pending = nil
						}
					} else if m.failed != nil {
						m.failed(j.id, err)
					}
				}
			}
			if st.proc != nil {
				l := j.loop
				st.proc.Process(pkt, func(out []byte) { l.inject(j.id, out) })
				l.wake()
			}
		}
		mediaBufs.Put(j.pkt)
	}
}

// event follows the RFC 4733 packets of one stream and reports each event
// once, at its first end packet (or, if the end packets were lost, when
// the next event starts).
func (st *mediaState) event(m *mediaWorkers, j mediaJob, pkt []byte) {
	off, ok := rtpPayloadOffset(pkt)
	if !ok || len(pkt)-off < 4 {
		return
	}
	ts := binary.BigEndian.Uint32(pkt[4:8])
	p := pkt[off:]
	end := p[1]&0x80 != 0
	ev := DTMFEvent{Call: j.call, Stream: j.id, Source: j.src, Event: p[0], Volume: p[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(p[2:4]), Timestamp: ts, SSRC: binary.BigEndian.Uint32(pkt[8:12]), PT: j.dtmf}
	if st.reported && ts == st.doneTS {
		return // a repeated end packet
	}
	st.inEvent, st.evTS = !end, ts
	if end {
		st.reported, st.doneTS = true, ts
		if m.dtmf != nil {
			m.dtmf(ev)
		}
	}
}

// rtpPayloadOffset returns where an RTP packet's payload starts (after
// CSRCs and the header extension).
func rtpPayloadOffset(pkt []byte) (int, bool) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return 0, false
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < off+4 {
			return 0, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:off+4]))
	}
	if off > len(pkt) {
		return 0, false
	}
	return off, true
}

// toMedia copies a packet of s for its media goroutine; dtmf is the
// RFC 4733 payload type if it is such a packet. A full queue drops it.
func (l *loop) toMedia(s *stream, src netip.AddrPort, pkt []byte, dtmf uint8, spec string) bool {
	if l.media == nil || len(pkt) > bufSize {
		return false
	}
	b := mediaBufs.Get().(*[bufSize]byte)
	n := copy(b[:], pkt)
	select {
	case l.media.queueFor(s.id) <- mediaJob{loop: l, id: s.id, call: s.cfg.Call, spec: spec, dtmf: dtmf, src: src, pkt: b, n: n}:
		return true
	default:
		mediaBufs.Put(b)
		s.mediaDrops++
		return false
	}
}

// mediaRetired tells the media goroutine of s that the stream is gone.
func (l *loop) mediaRetired(s *stream) {
	if l.media == nil || !s.mediaSeen {
		return
	}
	select {
	case l.media.queueFor(s.id) <- mediaJob{id: s.id, retire: true}:
	default: // the state is rebuilt if the id comes back with another spec
	}
}

// injected is a packet a media goroutine made for the peer of stream id.
type injected struct {
	id  StreamID
	off int
	n   int
}

// inject queues out (copied) to be sent as stream id's packet.
func (l *loop) inject(id StreamID, out []byte) {
	l.injMu.Lock()
	off := len(l.injBuf)
	l.injBuf = append(l.injBuf, out...)
	l.inj = append(l.inj, injected{id: id, off: off, n: len(out)})
	l.injMu.Unlock()
}

// sendInjected sends what the media goroutines made since the last time,
// each packet from its stream to the stream's sink.
func (l *loop) sendInjected() {
	l.injMu.Lock()
	if len(l.inj) == 0 {
		l.injMu.Unlock()
		return
	}
	l.injDo, l.inj = l.inj, l.injDo[:0]
	l.injDoBuf, l.injBuf = l.injBuf, l.injDoBuf[:0]
	l.injMu.Unlock()
	var sink *stream
	queued := 0
	for _, p := range l.injDo {
		s := l.byID[p.id]
		if s == nil {
			continue
		}
		pkt := l.injDoBuf[p.off : p.off+p.n]
		to := s.sink(false)
		if to == nil || to.dest.len == 0 || to.out.pending() {
			s.drops++
			continue
		}
		if queued == l.batch || (to != sink && queued > 0) {
			l.flush(sink, queued)
			queued = 0
		}
		if to.out != nil || to.srtpBroken {
			enc, ok := to.protect(l.obuf[queued*obufSize:(queued+1)*obufSize], pkt, false)
			if !ok {
				s.errors++
				continue
			}
			pkt = enc
		}
		sink = to
		l.queue(queued, to, pkt)
		queued++
	}
	if queued > 0 {
		l.flush(sink, queued)
	}
}

// InjectDTMF plays a DTMF event into what stream id's party sends, from
// its next packet on: its packets must go through a processor that can
// (Stream.Media, a transcoder); ErrNoMedia otherwise.
func (e *Engine) InjectDTMF(id StreamID, in Injection) error {
	e.mu.RLock()
	ent := e.streams[id]
	e.mu.RUnlock()
	if ent == nil {
		return fmt.Errorf("fwd: inject DTMF: stream %d: %w", id, ErrInvalidStream)
	}
	if e.media == nil {
		return ErrNoMedia
	}
	select {
	case e.media.queueFor(id) <- mediaJob{loop: ent.loop, id: id, call: ent.call, inject: &in}:
		return nil
	default:
		return fmt.Errorf("fwd: inject DTMF: stream %d: media queue full", id)
	}
}

// ErrNoMedia is returned by InjectDTMF on an engine without media
// processing.
var ErrNoMedia = errors.New("fwd: no media processing in this engine")
