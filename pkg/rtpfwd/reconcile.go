package rtpfwd

import (
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/fastpath"
	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/handoff"
	"github.com/rtpkit/rtpkit/pkg/icecheck"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// reconciler turns call records and the sockets portd hands over into the
// forwarding engine's streams. A stream is installed once its socket has
// arrived; it is removed when its call ends or stops using the socket, or
// when portd takes the socket back.
type reconciler struct {
	eng *fwd.Engine
	log *slog.Logger
	// dtmf: the streams' RFC 4733 events are followed (Stream.DTMF).
	dtmf bool
	// sentKeys are the DTLS keys (what the party sends with) last reported
	// per socket (activity.go), so that each new pair goes out once.
	sentKeys map[netip.AddrPort]fwd.SRTP
	// iceSelected is, per socket, the ICE pair the call record names
	// (nodestate.ICE.Selected).
	iceSelected map[netip.AddrPort]netip.AddrPort
	// altOf maps a second socket (fwd.Stream.AltFD) to the socket of the
	// stream it was given to.
	altOf map[netip.AddrPort]netip.AddrPort
	// learning is every stream's endpoint-learning mode
	// (--endpoint-learning).
	learning fwd.Learning
	// allowLoopback is --allow-loopback-media (destfilter.go).
	allowLoopback bool

	mu       sync.Mutex
	fds      map[netip.AddrPort]int
	ids      map[netip.AddrPort]fwd.StreamID
	nextID   fwd.StreamID
	calls    map[string]nodestate.Call
	byCall   map[string][]netip.AddrPort // sockets installed per call
	sockCall map[netip.AddrPort]string
	// learned remembers, per local socket, the learned endpoint a record
	// carried and the signalled one it came with (see destLocked).
	learned map[netip.AddrPort]learnedFor
	// retired sums the final counters of the streams removed so far, so
	// that the worker's totals (metrics) never go down.
	retired fwd.Counters
	// retiredFast is the fast path's share of retired.Packets.
	retiredFast uint64
	// inst is the configuration each installed stream was last given
	// (Signalled as sent to the engine), and locals maps stream ids back
	// to their sockets.
	inst   map[netip.AddrPort]fwd.Stream
	locals map[fwd.StreamID]netip.AddrPort
	// off is the fast path (offload.go).
	off *offloader
	// act counts the activity messages published and refused.
	act activityStats
	// batch holds the engine changes queued since the last flushLocked,
	// and after what to do with each one's outcome (see queueLocked).
	batch []fwd.Change
	after []func(fwd.Outcome)
	// dirty lists the calls whose sockets arrived in the hand-off message
	// being handled; Flush applies them.
	dirty map[string]bool
	// nodeLocals are the media sockets of every call record, by call;
	// refusedTo is the refused destination of a socket's stream, and
	// refused counts refusals (destfilter.go).
	// broadcasts are the host's subnet broadcast addresses, read at
	// broadcastsAt by readBroadcasts (nil: directedBroadcasts).
	broadcasts     map[netip.Addr]bool
	broadcastsAt   time.Time
	readBroadcasts func() map[netip.Addr]bool
	nodeLocals     map[netip.AddrPort]string
	refusedTo      map[netip.AddrPort]netip.AddrPort
	refused        uint64
}

// learnedFor is a learned endpoint and the signalled endpoint it was
// learned for.
type learnedFor struct{ learned, signalled netip.AddrPort }

func newReconciler(eng *fwd.Engine, off *offloader, log *slog.Logger) *reconciler {
	return &reconciler{eng: eng, log: log, fds: map[netip.AddrPort]int{}, ids: map[netip.AddrPort]fwd.StreamID{},
		calls: map[string]nodestate.Call{}, byCall: map[string][]netip.AddrPort{}, sockCall: map[netip.AddrPort]string{},
		learned: map[netip.AddrPort]learnedFor{}, inst: map[netip.AddrPort]fwd.Stream{}, locals: map[fwd.StreamID]netip.AddrPort{},
		off: off, dirty: map[string]bool{}, nodeLocals: map[netip.AddrPort]string{}, refusedTo: map[netip.AddrPort]netip.AddrPort{},
		sentKeys: map[netip.AddrPort]fwd.SRTP{}, iceSelected: map[netip.AddrPort]netip.AddrPort{}, altOf: map[netip.AddrPort]netip.AddrPort{}}
}

// Add is the hand-off handler: a socket arrived from portd. Its call is
// applied by Flush, once the whole message it came in is handled (a call's
// sockets come in one message): its streams then go to the engine in one
// batch.
func (r *reconciler) Add(s handoff.Socket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fds[s.Local] = s.FD
	r.off.socketArrived(s.Local)
	r.dirty[s.Call] = true
}

// Flush is the hand-off handler's end of a message from portd: it applies
// the calls whose sockets the message brought.
func (r *reconciler) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for call := range r.dirty {
		delete(r.dirty, call)
		if c, ok := r.calls[call]; ok {
			r.applyLocked(c)
		}
	}
}

// Remove is the hand-off handler: portd takes a socket back; the Worker
// closes it once this returns.
func (r *reconciler) Remove(local netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.ids[local]; ok {
		r.removeLocked(id)
	}
	r.stripAltLocked(local)
	r.flushLocked()
	r.off.forget(local)
	delete(r.fds, local)
	delete(r.learned, local)
	delete(r.iceSelected, local)
	delete(r.refusedTo, local)
	if call, ok := r.sockCall[local]; ok {
		delete(r.sockCall, local)
		r.byCall[call] = slices.DeleteFunc(r.byCall[call], func(a netip.AddrPort) bool { return a == local })
	}
}

// put applies a call record.
func (r *reconciler) put(c nodestate.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trackLocalsLocked(c.ID, &c)
	r.calls[c.ID] = c
	r.applyLocked(c)
}

// drop removes a call's streams.
func (r *reconciler) drop(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The kernel lets go first, so no packet is forwarded after the call
	// ended; the record's sockets are taken back even if they never
	// arrived in this run (entries adopted from an earlier one).
	for _, local := range recordLocals(r.calls[id]) {
		r.off.take(local)
	}
	r.trackLocalsLocked(id, nil)
	delete(r.calls, id)
	for _, local := range r.byCall[id] {
		if sid, ok := r.ids[local]; ok {
			r.removeLocked(sid)
		}
		delete(r.sockCall, local)
		delete(r.learned, local)
		delete(r.iceSelected, local)
		delete(r.refusedTo, local)
	}
	delete(r.byCall, id)
	r.flushLocked()
}

// removeLocked takes stream id out of the engine and adds its final
// counters to retired.
func (r *reconciler) removeLocked(id fwd.StreamID) {
	var k fastpath.Counters
	if local, ok := r.locals[id]; ok {
		r.off.take(local)
		k = r.off.base[local]
		r.off.forget(local)
		delete(r.inst, local)
	}
	r.queueLocked(fwd.Change{ID: id, Retire: true}, func(o fwd.Outcome) {
		if !o.Found {
			return
		}
		c := mergeKernel(o.Counters, k)
		r.retiredFast += k.Packets
		r.retired.Packets += c.Packets
		r.retired.Bytes += c.Bytes
		r.retired.Errors += c.Errors
		r.retired.FloodDrops += c.FloodDrops
		r.retired.KernelDrops += c.KernelDrops
		r.retired.SRTPFailures += c.SRTPFailures
	})
}

// queueLocked adds an engine change to the batch, and what to do with its
// outcome once flushLocked has applied it.
func (r *reconciler) queueLocked(c fwd.Change, after func(fwd.Outcome)) {
	r.batch = append(r.batch, c)
	r.after = append(r.after, after)
}

// flushLocked applies the queued changes in one batch (one round trip
// with the loop that serves the call, instead of one per stream) and then
// their follow-ups, in order.
func (r *reconciler) flushLocked() {
	if len(r.batch) == 0 {
		return
	}
	out := r.eng.Apply(r.batch)
	for i, o := range out {
		r.after[i](o)
	}
	clear(r.batch)
	clear(r.after)
	r.batch, r.after = r.batch[:0], r.after[:0]
}

func (r *reconciler) idLocked(local netip.AddrPort) fwd.StreamID {
	if !local.IsValid() {
		return 0
	}
	id, ok := r.ids[local]
	if !ok {
		r.nextID++
		id = r.nextID
		r.ids[local] = id
		r.locals[id] = local
	}
	return id
}

// applyLocked installs the streams of c that have their sockets and removes
// those c no longer has.
func (r *reconciler) applyLocked(c nodestate.Call) {
	byID := map[int]*nodestate.Leg{}
	for i := range c.Legs {
		byID[c.Legs[i].ID] = &c.Legs[i]
	}
	want := map[netip.AddrPort]bool{}
	for i := range c.Legs {
		l := &c.Legs[i]
		p := byID[l.Peer]
		for mi, m := range l.Medias {
			var pm *nodestate.Media
			if p != nil && mi < len(p.Medias) {
				pm = &p.Medias[mi]
			}
			rtp, rtcp := streamsOf(m.Streams)
			altRTP, altRTCP := streamsOf(m.Alt)
			prtp, prtcp := nodestate.Stream{}, nodestate.Stream{}
			if pm != nil {
				prtp, prtcp = streamsOf(pm.Streams)
			}
			flags := flagsOf(m)
			// RTCP beside transcoded RTP speaks of the SSRCs the other
			// side sees (fwd.MapSSRC).
			if pm != nil && pm.Transcode != nil {
				flags |= fwd.RTCPSenderSSRC
			}
			if m.Transcode != nil {
				flags |= fwd.RTCPReportSSRC
			}
			// SRTP keys: an unusable one stays unusable (the engine refuses
			// the stream) rather than becoming plain RTP.
			in, errIn := srtpKey(m.Protocol, m.SDESIn, m.SDESOut)
			out, errOut := srtpKey(m.Protocol, m.SDESOut, m.SDESIn)
			if m.DTLS != nil {
				// DTLS-SRTP: the keys come from the handshake (fwd keeps
				// them over this pending pair), or from the record when a
				// handshake on this node or another made them before.
				in, out, errIn, errOut = fwd.SRTPPending, fwd.SRTPPending, nil, nil
				if m.DTLS.KeyIn != "" && m.DTLS.KeyOut != "" {
					kin, err1 := srtpKey(m.Protocol, []string{m.DTLS.KeyIn}, []string{m.DTLS.KeyOut})
					kout, err2 := srtpKey(m.Protocol, []string{m.DTLS.KeyOut}, []string{m.DTLS.KeyIn})
					if err1 == nil && err2 == nil {
						in, out = kin, kout
					}
				}
			}
			if in != fwd.SRTPPending {
				in.ROC = m.SRTPInROC
			}
			if out != fwd.SRTPPending {
				out.ROC = m.SRTPOutROC
			}
			if err := errors.Join(errIn, errOut); err != nil {
				r.log.Warn("SRTP keys not usable", "call", c.ID, "media", m.Index, "err", err)
			}
			ice, dtls := iceCreds(m.ICE), dtlsSetup(m.DTLS)
			if m.ICE != nil && usable(m.ICE.Selected) {
				r.iceSelected[rtp.Local] = m.ICE.Selected
			} else {
				delete(r.iceSelected, rtp.Local)
			}
			if slices.Contains(m.Flags, nodestate.FlagBlackhole) {
				// media-echo=blackhole (or the other side of an echo):
				// this party's packets go nowhere.
				pm = nil
				prtp, prtcp = nodestate.Stream{}, nodestate.Stream{}
			}
			if rtp.Local.IsValid() {
				want[rtp.Local] = true
				s := fwd.Stream{Call: c.ID, Peer: r.idLocked(prtp.Local), Flags: flags, Learning: r.learning, LastSignal: c.LastSignal,
					SRTPIn: in, SRTPOut: out, ICE: ice, DTLS: dtls, Media: transcodeSpec(&m, pm)}
				if r.dtmf || flags&fwd.BlockDTMF != 0 {
					s.DTMF = dtmfPT(&m) // followed, or to be blocked
				}
				if m.RTCPMux {
					s.Flags |= fwd.RTCPMux
				} else {
					s.RTCP = r.idLocked(rtcp.Local)
				}
				if m.ICE != nil {
					copy(s.ICECandidates[:], m.ICE.Candidates)
				}
				r.altLocked(c.ID, rtp.Local, altRTP, &s, want)
				r.installLocked(c.ID, rtp, s)
			}
			if rtcp.Local.IsValid() && !m.RTCPMux {
				want[rtcp.Local] = true
				// RTCP goes to the peer's RTCP socket, or its RTP socket if it muxes.
				peerLocal := prtcp.Local
				if pm != nil && (pm.RTCPMux || !prtcp.Local.IsValid()) {
					peerLocal = prtp.Local
				}
				s := fwd.Stream{Call: c.ID, Peer: r.idLocked(peerLocal), Flags: fwd.RTCP | (flags &^ fwd.RTCPMux), Learning: r.learning, LastSignal: c.LastSignal,
					SRTPIn: in, SRTPOut: out, ICE: ice, DTLS: dtls}
				if m.ICE != nil {
					copy(s.ICECandidates[:], m.ICE.RTCPCandidates)
				}
				r.altLocked(c.ID, rtcp.Local, altRTCP, &s, want)
				r.installLocked(c.ID, rtcp, s)
			}
		}
	}
	for _, local := range slices.Clone(r.byCall[c.ID]) {
		if !want[local] {
			if sid, ok := r.ids[local]; ok {
				r.removeLocked(sid)
			}
			delete(r.sockCall, local)
			delete(r.learned, local)
			delete(r.iceSelected, local)
			delete(r.refusedTo, local)
			r.byCall[c.ID] = slices.DeleteFunc(r.byCall[c.ID], func(a netip.AddrPort) bool { return a == local })
		}
	}
	r.flushLocked()
	r.adoptLocked(c.ID)
	r.offloadCallLocked(c.ID)
}

// destLocked is where packets for the party of record stream st go until
// this worker learns better: the endpoint learned on the node that owned
// the call before (a call restored from Redis, behind NAT say), else the
// signalled one. The engine treats it as signalled: the stream starts
// sending there unconfirmed, learning goes on as usual, and a change of
// the value resets the stream to it, which is what a new learned endpoint
// in the record should do; while the value stays the same, a record
// written again keeps what this worker learned.
//
// The learned endpoint does not outlive the signalling it was learned
// under: once the record signals another endpoint with the same learned
// one (the party moved, the old owner has not learned anew), the
// signalled endpoint wins until a new learned one arrives. A party on hold
// (signalled endpoint unusable) is not sent to at all.
func (r *reconciler) destLocked(st nodestate.Stream) netip.AddrPort {
	if !usable(st.Learned) || !usable(st.Signalled) {
		delete(r.learned, st.Local)
		return st.Signalled
	}
	if was, ok := r.learned[st.Local]; ok && was.learned == st.Learned && was.signalled != st.Signalled {
		return st.Signalled
	}
	r.learned[st.Local] = learnedFor{learned: st.Learned, signalled: st.Signalled}
	return st.Learned
}

// usable reports whether an endpoint can be sent to (as package fwd judges
// a signalled endpoint): valid, a port, not the all-zero address.
func usable(ap netip.AddrPort) bool {
	return ap.IsValid() && ap.Port() != 0 && !ap.Addr().IsUnspecified()
}

// altLocked gives s the second socket of record stream alt (a party's
// socket of the other family) once it is here, and counts it as the
// call's.
func (r *reconciler) altLocked(call string, primary netip.AddrPort, alt nodestate.Stream, s *fwd.Stream, want map[netip.AddrPort]bool) {
	if !alt.Local.IsValid() {
		return
	}
	want[alt.Local] = true
	fd, ok := r.fds[alt.Local]
	if !ok {
		return // on its way; Add applies the call again
	}
	if owner, had := r.sockCall[alt.Local]; had && owner != call {
		r.detachLocked(owner, alt.Local)
	}
	s.AltFD, s.AltLocal = fd, alt.Local
	r.altOf[alt.Local] = primary
	if _, had := r.sockCall[alt.Local]; !had {
		r.sockCall[alt.Local] = call
		r.byCall[call] = append(r.byCall[call], alt.Local)
	}
}

// detachLocked takes socket local from the call that had it (owner): the
// stream on it, or its place as another stream's second socket.
func (r *reconciler) detachLocked(owner string, local netip.AddrPort) {
	if id, ok := r.ids[local]; ok {
		r.removeLocked(id)
	}
	r.stripAltLocked(local)
	delete(r.sockCall, local)
	delete(r.learned, local)
	delete(r.refusedTo, local)
	r.byCall[owner] = slices.DeleteFunc(r.byCall[owner], func(a netip.AddrPort) bool { return a == local })
}

// stripAltLocked queues the change that takes socket local from the
// stream it is the second socket of, if any.
func (r *reconciler) stripAltLocked(local netip.AddrPort) {
	p, ok := r.altOf[local]
	if !ok {
		return
	}
	delete(r.altOf, local)
	cfg, ok := r.inst[p]
	if !ok || cfg.AltLocal != local {
		return
	}
	cfg.AltFD, cfg.AltLocal = 0, netip.AddrPort{}
	r.inst[p] = cfg
	r.queueLocked(fwd.Change{ID: r.idLocked(p), Stream: cfg}, func(o fwd.Outcome) {
		if o.Err != nil {
			r.log.Warn("stream not updated", "local", p, "err", o.Err)
		}
	})
}

// installLocked installs s for record stream st once st's socket is here,
// sending to destLocked(st). (The engine waits on the socket only once the
// peer stream is installed too: after a restart the sockets come back one
// by one, and the packets queued meanwhile wait in the socket.)
func (r *reconciler) installLocked(call string, st nodestate.Stream, s fwd.Stream) {
	local := st.Local
	fd, ok := r.fds[local]
	if !ok {
		return // the socket has not arrived yet; Add applies the call again
	}
	s.FD = fd
	s.Local = local
	dest := r.destLocked(st)
	if s.ICE.Enabled() && usable(r.iceSelected[local]) {
		// The pair ICE nominated (on this worker before a restart, or on
		// the node that owned the call): sent to until the agent
		// nominates again or its consent lapses.
		dest = r.iceSelected[local]
		s.ICESelected = dest
	}
	s.Signalled = r.filterLocked(call, local, dest)
	// The party's ICE candidates are checked: the same refusals apply
	// (a refused one is left out quietly: the signalled one is logged).
	for i, cand := range s.ICECandidates {
		if cand.IsValid() && r.refusalLocked(local, cand) != "" {
			s.ICECandidates[i] = netip.AddrPort{}
		}
	}
	if owner, had := r.sockCall[local]; had && owner != call {
		// The socket changed hands (portd handed the port to a new call
		// before the old call's end reached this worker): the new call
		// gets a stream of its own, not the old one's counters and keys.
		r.detachLocked(owner, local)
	}
	prev, ok := r.inst[local]
	if ok && prev == s {
		// Installed as it is: the record was written again for another of
		// the call's streams, or another of its sockets arrived (applying
		// the same configuration again would change nothing in the engine).
		return
	}
	if ok && !sameStream(prev, s) {
		// New signalling (or a new socket): the call's streams come back
		// from the kernel before the engine applies it, and go back once
		// userspace has latched again.
		r.takeCallLocked(call)
	}
	r.inst[local] = s
	r.queueLocked(fwd.Change{ID: r.idLocked(local), Stream: s}, func(o fwd.Outcome) {
		if o.Err != nil {
			if r.inst[local] == s {
				delete(r.inst, local)
			}
			r.log.Warn("stream not installed", "call", call, "local", local, "err", o.Err)
			return
		}
		if r.sockCall[local] != call {
			r.sockCall[local] = call
			r.byCall[call] = append(r.byCall[call], local)
		}
	})
}

// streamsOf picks the RTP and RTCP stream out of a media's streams (or its
// second sockets).
func streamsOf(streams []nodestate.Stream) (rtp, rtcp nodestate.Stream) {
	for _, s := range streams {
		switch s.Component {
		case 1:
			rtp = s
		case 2:
			rtcp = s
		}
	}
	return rtp, rtcp
}

func flagsOf(m nodestate.Media) fwd.Flags {
	var f fwd.Flags
	for _, x := range m.Flags {
		switch x {
		case "asymmetric":
			f |= fwd.Asymmetric
		case "strict-source":
			f |= fwd.StrictSource
		case "media-handover":
			f |= fwd.MediaHandover
		case nodestate.FlagEcho:
			f |= fwd.Echo
		case nodestate.FlagBlockDTMF:
			f |= fwd.BlockDTMF
		}
	}
	return f
}

// sameStream reports whether two configurations of a stream forward the
// same way (the sockets' descriptors aside).
func sameStream(a, b fwd.Stream) bool {
	a.FD, b.FD, a.AltFD, b.AltFD = 0, 0, 0, 0
	return a == b
}

// recordLocals lists the local sockets of a call record's streams.
func recordLocals(c nodestate.Call) []netip.AddrPort {
	var out []netip.AddrPort
	for _, l := range c.Legs {
		for _, m := range l.Medias {
			for _, st := range m.AllStreams() {
				if st.Local.IsValid() {
					out = append(out, st.Local)
				}
			}
		}
	}
	return out
}

// iceCreds are the packet path's ICE credentials of a media's record (zero:
// no ICE, STUN passes like any packet).
func iceCreds(i *nodestate.ICE) icecheck.Creds {
	if i == nil {
		return icecheck.Creds{}
	}
	return icecheck.Creds{LocalUfrag: i.Ufrag, LocalPwd: i.Pwd, RemoteUfrag: i.RemoteUfrag, RemotePwd: i.RemotePwd, Controlling: i.Controlling, Lite: i.Lite}
}

// dtlsSetup is the packet path's DTLS setup of a media's record: rtpkit is
// the client when its a=setup was active, else (passive, or actpass while
// the answer is not in) the server.
func dtlsSetup(d *nodestate.DTLS) fwd.DTLS {
	if d == nil {
		return fwd.DTLS{}
	}
	role := fwd.DTLSServer
	if d.Setup == "active" {
		role = fwd.DTLSClient
	}
	return fwd.DTLS{Role: role, Fingerprint: d.Fingerprint}
}
