package rtpfwd

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/handoff"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// reconciler turns call records and the sockets portd hands over into the
// forwarding engine's streams. A stream is installed once its socket has
// arrived; it is removed when its call ends or stops using the socket, or
// when portd takes the socket back.
type reconciler struct {
	eng *fwd.Engine
	log *slog.Logger

	mu       sync.Mutex
	fds      map[netip.AddrPort]int
	ids      map[netip.AddrPort]fwd.StreamID
	nextID   fwd.StreamID
	calls    map[string]nodestate.Call
	byCall   map[string][]netip.AddrPort // sockets installed per call
	sockCall map[netip.AddrPort]string
}

func newReconciler(eng *fwd.Engine, log *slog.Logger) *reconciler {
	return &reconciler{eng: eng, log: log, fds: map[netip.AddrPort]int{}, ids: map[netip.AddrPort]fwd.StreamID{},
		calls: map[string]nodestate.Call{}, byCall: map[string][]netip.AddrPort{}, sockCall: map[netip.AddrPort]string{}}
}

// Add is the hand-off handler: a socket arrived from portd.
func (r *reconciler) Add(s handoff.Socket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fds[s.Local] = s.FD
	call := s.Call
	if c, ok := r.calls[call]; ok {
		r.applyLocked(c)
	}
}

// Remove is the hand-off handler: portd takes a socket back; the Worker
// closes it once this returns.
func (r *reconciler) Remove(local netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.ids[local]; ok {
		r.eng.Remove(id)
	}
	delete(r.fds, local)
	if call, ok := r.sockCall[local]; ok {
		delete(r.sockCall, local)
		r.byCall[call] = slices.DeleteFunc(r.byCall[call], func(a netip.AddrPort) bool { return a == local })
	}
}

// put applies a call record.
func (r *reconciler) put(c nodestate.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[c.ID] = c
	r.applyLocked(c)
}

// drop removes a call's streams.
func (r *reconciler) drop(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.calls, id)
	for _, local := range r.byCall[id] {
		if sid, ok := r.ids[local]; ok {
			r.eng.Remove(sid)
		}
		delete(r.sockCall, local)
	}
	delete(r.byCall, id)
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
			rtp, rtcp := streamsOf(m)
			prtp, prtcp := nodestate.Stream{}, nodestate.Stream{}
			if pm != nil {
				prtp, prtcp = streamsOf(*pm)
			}
			flags := flagsOf(m)
			if rtp.Local.IsValid() {
				want[rtp.Local] = true
				s := fwd.Stream{Call: c.ID, Peer: r.idLocked(prtp.Local), Signalled: rtp.Signalled, Flags: flags, LastSignal: c.LastSignal}
				if m.RTCPMux {
					s.Flags |= fwd.RTCPMux
				} else {
					s.RTCP = r.idLocked(rtcp.Local)
				}
				r.installLocked(c.ID, rtp.Local, s)
			}
			if rtcp.Local.IsValid() && !m.RTCPMux {
				want[rtcp.Local] = true
				// RTCP goes to the peer's RTCP socket, or its RTP socket if it muxes.
				peer := r.idLocked(prtcp.Local)
				if pm != nil && (pm.RTCPMux || !prtcp.Local.IsValid()) {
					peer = r.idLocked(prtp.Local)
				}
				s := fwd.Stream{Call: c.ID, Peer: peer, Signalled: rtcp.Signalled, Flags: fwd.RTCP | (flags &^ fwd.RTCPMux), LastSignal: c.LastSignal}
				r.installLocked(c.ID, rtcp.Local, s)
			}
		}
	}
	for _, local := range slices.Clone(r.byCall[c.ID]) {
		if !want[local] {
			if sid, ok := r.ids[local]; ok {
				r.eng.Remove(sid)
			}
			delete(r.sockCall, local)
			r.byCall[c.ID] = slices.DeleteFunc(r.byCall[c.ID], func(a netip.AddrPort) bool { return a == local })
		}
	}
}

func (r *reconciler) installLocked(call string, local netip.AddrPort, s fwd.Stream) {
	fd, ok := r.fds[local]
	if !ok {
		return // the socket has not arrived yet; Add applies the call again
	}
	s.FD = fd
	if err := r.eng.Set(r.idLocked(local), s); err != nil {
		r.log.Warn("stream not installed", "call", call, "local", local, "err", err)
		return
	}
	if r.sockCall[local] != call {
		r.sockCall[local] = call
		r.byCall[call] = append(r.byCall[call], local)
	}
}

func streamsOf(m nodestate.Media) (rtp, rtcp nodestate.Stream) {
	for _, s := range m.Streams {
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
		}
	}
	return f
}
