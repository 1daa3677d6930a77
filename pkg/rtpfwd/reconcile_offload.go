package rtpfwd

// The reconciler's side of the fast path: which of its streams the
// offloader should hold in the kernel, kept in line with the engine's
// latching by change notices and a periodic sweep.

import (
	"net/netip"
	"time"

	"github.com/rtpkit/rtpkit/pkg/fastpath"
	"github.com/rtpkit/rtpkit/pkg/fwd"
)

// takeCallLocked takes every stream of a call back from the kernel.
func (r *reconciler) takeCallLocked(call string) {
	for _, local := range r.byCall[call] {
		r.off.take(local)
	}
	for _, local := range recordLocals(r.calls[call]) {
		r.off.take(local)
	}
}

// adoptLocked confirms, in the engine, the endpoints of the call's
// streams that an earlier run had offloaded (entries found pinned at
// start): no packet of theirs reaches userspace to be latched, and the
// kernel keeps forwarding them meanwhile. An adopted entry says both
// where its party sends from (Expect) and where its peer is (Dest).
func (r *reconciler) adoptLocked(call string) {
	o := r.off
	if len(o.adopted) == 0 {
		return
	}
	for _, local := range r.byCall[call] {
		if !o.adopted[local] {
			continue
		}
		cfg, ok := r.inst[local]
		if !ok {
			continue
		}
		peer, ok := r.locals[cfg.Peer]
		if _, inst := r.inst[peer]; !ok || !inst {
			continue // wait for the peer's socket; the kernel forwards meanwhile
		}
		e := o.entries[local]
		if usable(e.Expect) {
			_ = r.eng.Latch(r.ids[local], e.Expect)
		}
		if usable(e.Dest) {
			_ = r.eng.Latch(cfg.Peer, e.Dest)
		}
		delete(o.adopted, local)
	}
}

// offloadCallLocked brings the kernel entries of a call's streams in line
// with the engine's state.
func (r *reconciler) offloadCallLocked(call string) {
	if r.off.fp == nil {
		return
	}
	for _, local := range r.byCall[call] {
		r.offloadLocked(local)
	}
}

// offloadLocked puts, updates or takes back one stream's kernel entry.
func (r *reconciler) offloadLocked(local netip.AddrPort) {
	o := r.off
	if o.adopted[local] {
		return // still waiting for its peer (adoptLocked)
	}
	want, ok := r.wantEntryLocked(local)
	cur, have := o.entries[local]
	switch {
	case !ok:
		o.take(local)
	case !have || cur != want:
		o.put(local, want)
	}
}

// wantEntryLocked computes the kernel entry of the stream on socket local,
// or false if the stream must stay in userspace: it is offloaded once both
// its party's endpoint and its peer's are confirmed, both sockets and the
// peer's endpoint are addresses the program serves and all of one family,
// IPv4 or IPv6 (a mixed pair, IPv4 on one side and IPv6 on the other,
// stays in userspace: the program does not translate between families),
// and it is neither echoed (the program forwards to the peer and rewrites
// no SSRC) nor SRTP on either side (the program does no cryptography),
// nor transcoded or followed for DTMF events (media goroutines, in
// userspace), and neither party has a second socket (an ICE candidate of the other
// family: the program serves one socket per stream). A
// strict stream needs its party's latched endpoint in that
// family too.
func (r *reconciler) wantEntryLocked(local netip.AddrPort) (fastpath.Entry, bool) {
	cfg, ok := r.inst[local]
	if !ok || cfg.Peer == 0 || cfg.Flags&fwd.Echo != 0 || cfg.SRTPIn.Enabled() || cfg.Media != "" || cfg.DTMF != 0 || cfg.Flags&(fwd.RTCPSenderSSRC|fwd.RTCPReportSSRC) != 0 || cfg.AltFD != 0 || !servable(local) {
		return fastpath.Entry{}, false
	}
	v4 := local.Addr().Unmap().Is4()
	peerLocal, ok := r.locals[cfg.Peer]
	if !ok || !servable(peerLocal) || peerLocal.Addr().Unmap().Is4() != v4 {
		return fastpath.Entry{}, false
	}
	pcfg, ok := r.inst[peerLocal]
	if !ok || pcfg.SRTPOut.Enabled() || pcfg.AltFD != 0 { // SRTP stays in userspace, as do second sockets
		return fastpath.Entry{}, false
	}
	st, ok1 := r.eng.Stats(r.ids[local])
	ps, ok2 := r.eng.Stats(cfg.Peer)
	if !ok1 || !ok2 || !st.Confirmed || !ps.Confirmed || !usable(ps.Endpoint) || !sameFamily(ps.Endpoint, v4) || !usable(pcfg.Signalled) {
		return fastpath.Entry{}, false
	}
	strict := cfg.Flags&(fwd.StrictSource|fwd.MediaHandover) != 0
	if strict && (!usable(st.Endpoint) || !sameFamily(st.Endpoint, v4)) {
		return fastpath.Entry{}, false
	}
	ifindex, ok := r.off.egress(ps.Endpoint.Addr())
	if !ok {
		return fastpath.Entry{}, false
	}
	e := fastpath.Entry{
		Source:  peerLocal,
		Dest:    ps.Endpoint,
		Strict:  strict,
		IfIndex: ifindex,
		// Muxed RTCP for a party that does not mux goes to its separate
		// RTCP socket: userspace does that.
		PassRTCP: cfg.Flags&fwd.RTCP == 0 && cfg.Flags&fwd.RTCPMux != 0 && pcfg.Flags&fwd.RTCPMux == 0,
		// The engine's flood cap, in the kernel too: a non-strict entry
		// forwards any source.
		MaxPPS: fwd.DefaultMaxStreamPPS,
	}
	if usable(st.Endpoint) && sameFamily(st.Endpoint, v4) {
		e.Expect = st.Endpoint
	}
	tos, ttl := r.off.socketOpts(peerLocal, pcfg.FD)
	e.SetTOS, e.TOS = true, tos
	e.SetTTL, e.TTL = true, ttl
	return e, true
}

// sameFamily reports whether ap is an IPv4 address (IPv4-mapped included)
// when v4, and an IPv6 one the program can send to (no zone) otherwise.
func sameFamily(ap netip.AddrPort, v4 bool) bool {
	a := ap.Addr()
	if v4 {
		return a.Unmap().Is4()
	}
	return a.Is6() && !a.Is4In6() && a.Zone() == ""
}

// changed handles an engine notice that a stream's endpoint changed (a
// re-latch or a confirmation): its call's entries follow at once.
func (r *reconciler) changed(id fwd.StreamID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off.fp == nil {
		return
	}
	if call, ok := r.sockCall[r.locals[id]]; ok {
		r.offloadCallLocked(call)
	}
}

// sweepOffload re-evaluates every stream (a safety net behind the change
// notices, which the engine drops when its channel is full) and, every
// scanEvery sweeps, attaches to new network devices.
func (r *reconciler) sweepOffload(scan bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off.fp == nil {
		return
	}
	if scan {
		r.off.scanDevices()
	}
	for call := range r.byCall {
		r.adoptLocked(call)
		r.offloadCallLocked(call)
	}
}

// syncedOffload runs once the call records are all known: adopted
// entries that no record has any more (the call ended while rtp-fwd was
// down) are taken back.
func (r *reconciler) syncedOffload() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.off.adopted) == 0 {
		return
	}
	known := map[netip.AddrPort]bool{}
	for _, c := range r.calls {
		for _, local := range recordLocals(c) {
			known[local] = true
		}
	}
	n := 0
	for local := range r.off.adopted {
		if !known[local] {
			r.off.forget(local)
			n++
		}
	}
	if n > 0 {
		r.log.Info("fast path: took back streams of calls that ended while rtp-fwd was down", "streams", n)
	}
}

// runOffload follows the engine's change notices and sweeps every second
// until ctx ends.
func (r *reconciler) runOffload(done <-chan struct{}, changes <-chan fwd.StreamID) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-done:
			return
		case id := <-changes:
			r.changed(id)
		case <-t.C:
			r.sweepOffload(n%5 == 0)
		}
	}
}
