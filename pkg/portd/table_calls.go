package portd

// The pairs of calls: made to match a call's records (syncCall) or bound
// exactly for a restore (bindCall), taking over leases when they must,
// handed back by workers after a restart (adopt), and released when the
// call drops them.

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/mediasock"
)

// reserveLocked takes the exact pair (or single port) b for a restore or a
// restart: reserve its ports in the pool and bind them. If the ports are
// bound already (a worker holds the sockets after a portd restart) the pair
// waits for the worker to hand them back.
func (t *table) reserveLocked(b block) (*pair, error) {
	base := netip.AddrPortFrom(b.rtp.Addr().Unmap(), b.rtp.Port())
	if p := t.lookupLocked(base); p != nil {
		return p, nil
	}
	n := 2
	if b.single {
		n = 1
	}
	a, ok := t.ifaces[base.Addr()]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errNotOurs, base.Addr())
	}
	pool := t.pools[base.Addr()]
	if lo, hi := pool.Range(); int(base.Port()) < lo || int(base.Port())+n-1 > hi {
		return nil, fmt.Errorf("%w: port %d is outside %s's range %d-%d", errNotOurs, base.Port(), base.Addr(), lo, hi)
	}
	if t.nsock+2 > t.maxSockets {
		return nil, fmt.Errorf("%w: %d sockets open, limit %d", errFDLimit, t.nsock, t.maxSockets)
	}
	if err := pool.Reserve(int(base.Port()), n); err != nil {
		return nil, fmt.Errorf("reserve %s: %w", base, err)
	}
	p := &pair{base: base, single: b.single, iface: a.Name, adv: a.Advertised, gen: b.gen}
	if p.gen == 0 {
		p.gen = t.nextGen()
	}
	if err := t.bindLocked(p); err != nil {
		if !errors.Is(err, unix.EADDRINUSE) {
			_ = pool.Release(int(base.Port()), n)
			return nil, err
		}
		p.adopting = true
	}
	t.pairs[base] = p
	return p, nil
}

// callChange is what syncCall did: pairs newly assigned to the call, pairs
// it no longer uses (released), and leases it took from their holders
// (revoked).
type callChange struct {
	assigned []*pair
	released []*pair
	revoked  []portdapi.Revoked
	stale    int
	// conflicts counts blocks refused because another call holds them.
	conflicts int
}

// syncCall makes the call own exactly the pairs of blocks, binding any that
// are not bound yet (a restored call, or a restart) and releasing the pairs
// it dropped.
//
// A leased pair named with its lease's generation is the holder's own use
// of it (ng-ctl took it from its stock for this call). Named without a
// generation, the record comes from someone who did not get the pair from
// the lease (a restore written without portd.bind): the lease is revoked.
// Such a record never takes a pair another call uses: that is an error.
func (t *table) syncCall(call string, blocks []block) (callChange, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ch callChange
	rv := revocations{}
	want := map[netip.AddrPort]bool{}
	var firstErr error
	for _, b := range blocks {
		if p := t.lookupLocked(b.rtp); p != nil && b.gen != 0 && p.gen != b.gen {
			// The record names an earlier (or later) allocation of these
			// ports: it is stale, or they now belong to someone else.
			ch.stale++
			continue
		} else if p != nil && b.gen == 0 && p.call != "" && p.call != call {
			// Named without a generation (not from portd's bind) while
			// another call uses them: never taken from a live call.
			ch.conflicts++
			if firstErr == nil {
				firstErr = fmt.Errorf("call %q: %w: %s belongs to call %q", call, errInUse, p.base, p.call)
			}
			continue
		} else if p == nil && t.issuedLocked(b.gen) {
			// An allocation of this run that has ended: the holder freed it
			// (the call's free request travels faster than its last
			// records). Binding the ports again would only be undone by
			// the record that follows.
			ch.stale++
			continue
		}
		p, err := t.reserveLocked(b)
		if err == nil && want[p.base] {
			continue
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("call %q: %w", call, err)
			}
			continue
		}
		want[p.base] = true
		if p.call != call {
			if b.gen == 0 {
				rv.noteLocked(p)
			}
			t.assignLocked(p, call)
			ch.assigned = append(ch.assigned, p)
		}
	}
	for base, p := range t.byCall[call] {
		if !want[base] {
			ch.released = append(ch.released, p)
			t.releaseLocked(p)
		}
	}
	ch.revoked = rv.list()
	return ch, firstErr
}

// dropCall releases every pair of the call.
func (t *table) dropCall(call string) []*pair {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*pair
	for _, p := range t.byCall[call] {
		out = append(out, p)
	}
	for _, p := range out {
		t.releaseLocked(p)
	}
	return out
}

// free releases the given pairs if they are still the generation named
// (gen 0: whichever), leased or assigned; what it released is returned.
func (t *table) free(pairs []portdapi.Pair) []*pair {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*pair
	for _, q := range pairs {
		if p := t.lookupLocked(q.RTP); p != nil && (q.Gen == 0 || q.Gen == p.gen) {
			out = append(out, p)
			t.releaseLocked(p)
		}
	}
	return out
}

// release releases the pairs of the given addresses, leased or assigned.
func (t *table) release(locals []netip.AddrPort) []*pair {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*pair
	for _, l := range locals {
		if p := t.lookupLocked(l); p != nil {
			out = append(out, p)
			t.releaseLocked(p)
		}
	}
	return out
}

// adopt takes a socket a worker handed back after a portd restart. adopt
// owns fd whatever it returns: it keeps it (kept) or closes it, exactly
// once, so the caller never closes it. known is false if portd does not
// know the address (the worker should drop it); call is the pair's call.
// A socket for a port whose socket portd has already (it was bound, or a
// worker handed it back before) is a duplicate and is closed.
func (t *table) adopt(local netip.AddrPort, fd int) (kept bool, known bool, call string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.lookupLocked(local)
	if p == nil {
		_ = unix.Close(fd)
		return false, false, ""
	}
	slot := &p.rtp
	if local != p.base {
		slot = &p.rtcp
	}
	if !p.adopting || *slot != nil {
		_ = unix.Close(fd)
		return false, true, p.call
	}
	s, err := mediasock.FromFD(fd, "udp", local) // closes fd on error
	if err != nil {
		t.log.Warn("worker handed back an unusable socket", "addr", local, "err", err)
		return false, true, p.call
	}
	*slot = s
	if p.complete() {
		p.adopting = false
	}
	t.nsock++
	return true, true, p.call
}

// bindCall binds the pairs of blocks for call (adding to what it has), all
// or nothing. Pairs that were leased to a holder and unused go to the call
// all the same (a restore knows the exact ports it needs); they are
// returned as revocations, to be announced to their holders.
func (t *table) bindCall(call string, blocks []block) ([]portdapi.Pair, []portdapi.Revoked, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var made, take []*pair
	seen := map[*pair]bool{}
	fail := func(err error) ([]portdapi.Pair, []portdapi.Revoked, error) {
		for _, m := range made {
			t.releaseLocked(m)
		}
		return nil, nil, err
	}
	// First check and bind everything, so that a failure changes nothing.
	for _, b := range blocks {
		l := b.rtp
		p := t.lookupLocked(l)
		switch {
		case p == nil:
			var err error
			if p, err = t.reserveLocked(b); err != nil {
				return fail(fmt.Errorf("bind %s for call %q: %w", l, call, err))
			}
			made = append(made, p)
		case p.call != "" && p.call != call:
			return fail(fmt.Errorf("bind %s for call %q: %w: it belongs to call %q", l, call, errInUse, p.call))
		}
		if !seen[p] {
			seen[p] = true
			take = append(take, p)
		}
	}
	var out []portdapi.Pair
	rv := revocations{}
	for _, p := range take {
		rv.noteLocked(p)
		t.assignLocked(p, call)
		out = append(out, p.api())
	}
	return out, rv.list(), nil
}

// revocations collects, per holder, the leased pairs a call took over.
type revocations map[string][]portdapi.Pair

// noteLocked records p if it is leased and unused: called just before p
// is assigned to a call its holder did not make.
func (r revocations) noteLocked(p *pair) {
	if p.holder != "" && p.call == "" {
		r[p.holder] = append(r[p.holder], p.api())
	}
}

// list returns the revocations by holder name.
func (r revocations) list() []portdapi.Revoked {
	if len(r) == 0 {
		return nil
	}
	out := make([]portdapi.Revoked, 0, len(r))
	for h, ps := range r {
		out = append(out, portdapi.Revoked{Holder: h, Pairs: ps})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Holder < out[j].Holder })
	return out
}
