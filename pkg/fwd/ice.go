package fwd

// ICE on the packet path. A stream with ICE credentials (Stream.ICE) has
// the STUN messages its socket receives (told apart from RTP, RTCP and
// DTLS by the first byte, RFC 7983) copied to the engine's control path,
// never handled in the loop: the loop only copies the datagram into a
// bounded queue (full: the message is dropped and counted in ICEDropped,
// and the peer retransmits).
//
// The control path (one goroutine per engine) is rtpkit's ICE agent for
// every such stream, a full agent (RFC 8445) over the stream's one local
// candidate, its socket:
//   - it answers the peer's checks (pkg/icecheck), and sends a triggered
//     check back to where a valid one came from (a peer-reflexive
//     candidate of the peer's);
//   - until a pair is valid it checks the peer's signalled address and
//     the peer-reflexive ones every checkEvery; as the controlling agent
//     it then nominates the first valid pair with a check that carries
//     USE-CANDIDATE, repeated every checkEvery until it succeeds (regular
//     nomination, RFC 8445 §8.1.1);
//   - a pair nominated (by the peer's USE-CANDIDATE when we are
//     controlled, by our own successful nominating check when
//     controlling) becomes the stream's endpoint (Latch), and is checked
//     again every consentEvery (consent freshness, RFC 7675): when no
//     check of it has succeeded for consentLapse, the party's consent
//     has lapsed, nothing more is sent to it and the agent checks again
//     from the start.

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/icecheck"
)

// stunMax is the largest STUN message taken from a media socket (a check
// is about 100 bytes; RFC 8489 keeps STUN under 576 bytes without a path
// MTU known).
const stunMax = 576

// checkQueue is the number of STUN messages waiting for the control path.
const checkQueue = 256

// Agent timing: checks to a pair not nominated yet, consent checks on the
// nominated one, how long a check waits for its answer, and the ticks.
const (
	checkEvery   = 200 * time.Millisecond
	consentEvery = 5 * time.Second
	checkTimeout = 2 * time.Second
	agentTick    = 50 * time.Millisecond
)

// consentLapse is how long consent lasts after the last successful check
// of the nominated pair (RFC 7675 §5.1: 30 s; tests shorten it).
var consentLapse = 30 * time.Second

// maxTargets bounds the peer-reflexive addresses an agent checks (besides
// the signalled one and the party's candidates), and maxPending the checks
// of an agent waiting for their answers (17 pairs every checkEvery for
// checkTimeout fit).
const (
	maxTargets = 8
	maxPending = 256
)

// ctlJob is one STUN or DTLS message on its way to the control path.
type ctlJob struct {
	id   StreamID
	fd   int
	src  netip.AddrPort
	dtls bool
	n    int
	buf  [ctlMax]byte
}

// ctlMax is the largest datagram the control path takes: a STUN message
// (stunMax) or a DTLS record of a handshake flight.
const ctlMax = 1500

// check queues a STUN message (or, dtls, a DTLS record) that s's socket fd
// received for the control path.
func (l *loop) check(s *stream, fd int, src netip.AddrPort, pkt []byte, dtls bool) {
	if len(pkt) > ctlMax || !dtls && len(pkt) > stunMax || l.checks == nil {
		s.iceDropped++
		return
	}
	j := ctlJob{id: s.id, fd: fd, src: src, n: len(pkt), dtls: dtls}
	copy(j.buf[:], pkt)
	select {
	case l.checks <- j:
	default:
		s.iceDropped++
	}
}

// ctlStream is what the control path knows of a stream with ICE or DTLS.
type ctlStream struct {
	// life numbers this life of the stream id: a stream retired and set
	// again (its socket handed on to a new call, ids being per socket)
	// gets a new one, and none of the old life's ICE agent or DTLS
	// session carries over to it.
	life uint64
	sockets
	creds     icecheck.Creds
	dtls      DTLS
	signalled netip.AddrPort
	selected  netip.AddrPort // Stream.ICESelected
	cands     [MaxICECandidates]netip.AddrPort
	// keyed: the stream came with SRTP keys (a DTLS call continued from
	// its record after a restart or failover): rtpkit starts no new
	// handshake, but takes one the party starts.
	keyed bool
}

// ctlStreams is the engine's registry of streams with ICE or DTLS, kept by
// Set and Retire; the control path reads it.
type ctlStreams struct {
	mu      sync.Mutex
	streams map[StreamID]ctlStream
	lives   uint64 // the last ctlStream.life given
}

// note records stream id's ICE and DTLS configuration (none: forgets it).
func (r *ctlStreams) note(id StreamID, s *Stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s == nil || !s.ICE.Enabled() && s.DTLS.Role == 0 {
		delete(r.streams, id)
		return
	}
	life := r.streams[id].life
	if _, ok := r.streams[id]; !ok {
		r.lives++
		life = r.lives
	}
	r.streams[id] = ctlStream{life: life, sockets: socketsOf(s), creds: s.ICE, dtls: s.DTLS, signalled: s.Signalled, selected: s.ICESelected, cands: s.ICECandidates,
		keyed: s.SRTPIn.Enabled() && s.SRTPIn != SRTPPending}
}

// agent is the control path's state of one stream's ICE agent.
type agent struct {
	cfg        ctlStream
	tiebreaker uint64
	targets    []netip.AddrPort
	pending    map[[12]byte]sentCheck
	valid      netip.AddrPort // the first pair whose check succeeded
	nominated  netip.AddrPort
	consentAt  time.Time // the nominated pair's last successful check
	lastCheck  time.Time
}

// sentCheck is a check of ours awaiting its answer.
type sentCheck struct {
	to       netip.AddrPort
	nominate bool
	at       time.Time
}

// answerChecks is the control path: it handles the queued STUN messages
// and DTLS records, runs the ICE agents and starts the DTLS handshakes
// rtpkit opens, until the queue is closed.
func (e *Engine) answerChecks(q <-chan ctlJob) {
	defer close(e.checked)
	agents := map[StreamID]*agent{}
	sessions := map[StreamID]*dtlsSession{}
	waiting := map[StreamID]*early{}
	defer func() {
		for _, s := range sessions {
			s.close()
		}
		e.dtlsWG.Wait()
	}()
	tick := time.NewTicker(agentTick)
	defer tick.Stop()
	for {
		select {
		case j, ok := <-q:
			if !ok {
				return
			}
			if j.dtls {
				e.dtlsRecord(sessions, waiting, &j)
			} else {
				e.stunMessage(agents, &j)
			}
		case now := <-tick.C:
			e.runAgents(agents, now)
			e.runDTLS(sessions, waiting)
		}
	}
}

// runDTLS ends the sessions of streams that went or changed their setup,
// and starts the handshakes of streams where rtpkit is the client once
// the party's address is known.
func (e *Engine) runDTLS(sessions map[StreamID]*dtlsSession, waiting map[StreamID]*early) {
	e.ctl.mu.Lock()
	cfgs := make(map[StreamID]ctlStream, len(e.ctl.streams))
	for id, c := range e.ctl.streams {
		if c.dtls.Role != 0 {
			cfgs[id] = c
		}
	}
	e.ctl.mu.Unlock()
	for id, s := range sessions {
		if c, ok := cfgs[id]; !ok || c.dtls != s.cfg || c.sockets != s.sockets || c.life != s.life {
			s.close()
			delete(sessions, id)
		}
	}
	for id, w := range waiting {
		c, ok := cfgs[id]
		switch {
		case !ok || c.life != w.life || time.Since(w.at) > earlyWait:
			delete(waiting, id)
		case c.dtls.Fingerprint != "":
			delete(waiting, id)
			for _, rec := range w.recs {
				e.feedDTLS(sessions, id, c, w.src, rec)
			}
		}
	}
	for id, c := range cfgs {
		if c.dtls.Role != DTLSClient || c.keyed || sessions[id] != nil && !sessions[id].ended() {
			continue
		}
		if st, ok := e.Stats(id); ok && usable(st.Endpoint) {
			e.dtlsSessionFor(sessions, id, c)
		}
	}
}

// agentFor returns the agent of stream id as configured now (a new one
// when its credentials changed: an ICE restart), nil if id has no ICE.
func (e *Engine) agentFor(agents map[StreamID]*agent, id StreamID) *agent {
	e.ctl.mu.Lock()
	cfg, ok := e.ctl.streams[id]
	e.ctl.mu.Unlock()
	if !ok {
		delete(agents, id)
		return nil
	}
	a := agents[id]
	if a == nil || a.cfg.creds != cfg.creds || a.cfg.sockets != cfg.sockets || a.cfg.life != cfg.life {
		a = &agent{cfg: cfg, tiebreaker: rand.Uint64(), pending: map[[12]byte]sentCheck{}}
		if usable(cfg.selected) {
			// Nominated before (the record's pair): consent runs from now.
			a.nominated, a.consentAt = cfg.selected, time.Now()
		}
		agents[id] = a
	}
	a.cfg.signalled, a.cfg.cands = cfg.signalled, cfg.cands
	return a
}

// stunMessage handles one STUN message from a stream's socket.
func (e *Engine) stunMessage(agents map[StreamID]*agent, j *ctlJob) {
	a := e.agentFor(agents, j.id)
	if a == nil || !a.cfg.owns(j.fd) {
		return // the stream went, or changed socket, while it waited
	}
	msg := j.buf[:j.n]
	if !icecheck.IsRequest(msg) {
		tx, ok, _ := icecheck.Response(msg, a.cfg.creds)
		sent, known := a.pending[tx]
		if !known {
			return
		}
		delete(a.pending, tx)
		// A success counts only from where the check went (RFC 8445
		// §7.2.5.2.1); ours nominates when it carried USE-CANDIDATE.
		switch {
		case ok && j.src == sent.to && j.src == a.nominated:
			a.consentAt = time.Now()
		case !ok || j.src != sent.to || a.nominated.IsValid():
		case sent.nominate:
			a.nominated, a.consentAt = j.src, time.Now()
			_ = e.nominate(j.id, j.src)
		case a.cfg.creds.Controlling && !a.valid.IsValid():
			a.valid = j.src
			e.sendCheck(a, j.src, time.Now(), true) // nominate it
		}
		return
	}
	resp, chk, err := icecheck.Answer(msg, j.src, a.cfg.creds)
	if resp == nil {
		return
	}
	if err == nil && chk.UseCandidate && !a.cfg.creds.Controlling && a.nominated != j.src {
		// Nominated before the answer leaves: the party may send media
		// as soon as it has it.
		a.nominated, a.consentAt = j.src, time.Now()
		_ = e.nominate(j.id, j.src)
		_ = unix.Sendto(j.fd, resp, 0, sockaddrOf(j.src))
		a.addTarget(j.src)
		return
	}
	_ = unix.Sendto(j.fd, resp, 0, sockaddrOf(j.src)) // from where it came
	if err != nil {
		return
	}
	a.addTarget(j.src)
	if !a.nominated.IsValid() && !a.valid.IsValid() {
		e.sendCheck(a, j.src, time.Now(), false) // a triggered check
	}
}

// addTarget adds a peer-reflexive address to check.
func (a *agent) addTarget(ap netip.AddrPort) {
	for _, t := range a.targets {
		if t == ap {
			return
		}
	}
	if len(a.targets) < maxTargets {
		a.targets = append(a.targets, ap)
	}
}

// runAgents sends the checks that are due.
func (e *Engine) runAgents(agents map[StreamID]*agent, now time.Time) {
	e.ctl.mu.Lock()
	ids := make([]StreamID, 0, len(e.ctl.streams))
	for id := range e.ctl.streams {
		ids = append(ids, id)
	}
	e.ctl.mu.Unlock()
	if len(agents) > len(ids) { // streams went: forget their agents
		live := make(map[StreamID]bool, len(ids))
		for _, id := range ids {
			live[id] = true
		}
		for id := range agents {
			if !live[id] {
				delete(agents, id)
			}
		}
	}
	for _, id := range ids {
		a := e.agentFor(agents, id)
		if a == nil || !a.cfg.creds.CanCheck() {
			continue
		}
		for tx, s := range a.pending {
			if now.Sub(s.at) > checkTimeout {
				delete(a.pending, tx)
			}
		}
		switch {
		case a.nominated.IsValid() && now.Sub(a.consentAt) > consentLapse:
			// Consent lapsed (RFC 7675 §5.1): stop sending, check anew.
			a.nominated, a.valid = netip.AddrPort{}, netip.AddrPort{}
			_ = e.nominate(id, netip.AddrPort{})
		case a.nominated.IsValid():
			if now.Sub(a.lastCheck) >= consentEvery {
				e.sendCheck(a, a.nominated, now, false)
			}
		case now.Sub(a.lastCheck) < checkEvery:
		case a.valid.IsValid():
			e.sendCheck(a, a.valid, now, true)
		default:
			if usable(a.cfg.signalled) {
				e.sendCheck(a, a.cfg.signalled, now, false)
			}
			for _, t := range a.targets {
				if t != a.cfg.signalled {
					e.sendCheck(a, t, now, false)
				}
			}
			for _, t := range a.cfg.cands {
				if usable(t) && t != a.cfg.signalled && !slices.Contains(a.targets, t) && a.cfg.reaches(t) {
					e.sendCheck(a, t, now, false)
				}
			}
			a.lastCheck = now
		}
	}
}

// sendCheck sends a check of a's to the address to, nominating the pair
// with USE-CANDIDATE if nominate (only a controlling agent does).
func (e *Engine) sendCheck(a *agent, to netip.AddrPort, now time.Time, nominate bool) {
	if !a.cfg.creds.CanCheck() || len(a.pending) >= maxPending {
		return
	}
	nominate = nominate && a.cfg.creds.Controlling
	req, tx, err := icecheck.Request(a.cfg.creds, a.tiebreaker, nominate)
	if err != nil {
		return
	}
	a.pending[tx] = sentCheck{to: to, nominate: nominate, at: now}
	a.lastCheck = now
	_ = unix.Sendto(a.cfg.to(to), req, 0, sockaddrOf(to))
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

// nominate makes ep stream id's endpoint as the pair its ICE agent
// nominated (Latch, for ICE: whatever the signalled address).
func (e *Engine) nominate(id StreamID, ep netip.AddrPort) error {
	return e.toLoop("nominate", &command{op: opLatch, ice: true, id: id, ep: netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())})
}
