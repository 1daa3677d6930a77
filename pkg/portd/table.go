package portd

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/ifspec"
	"github.com/rtpkit/rtpkit/pkg/mediasock"
	"github.com/rtpkit/rtpkit/pkg/portpool"
)

// pair is the unit of allocation: an RTP port with RTCP on the next one
// (an even port and its successor), or, single, one port for an rtcp-mux
// stream; and the sockets portd holds for it. A pair is leased (holder set,
// no call), assigned (call set) or, between the two, neither (a bare
// restore).
type pair struct {
	base   netip.AddrPort // the RTP address
	single bool           // one port (rtcp-mux): no RTCP socket
	iface  string
	adv    netip.Addr
	rtp    *mediasock.Socket // nil while adopting
	rtcp   *mediasock.Socket // nil while adopting, and for a single port
	holder string
	call   string
	// gen tells this allocation of the ports from earlier and later ones:
	// a call record or a free request naming another generation is stale.
	gen uint64
	// adopting: bound by someone else when portd started (a worker holds
	// it); the worker hands portd a copy when it reconnects.
	adopting bool
}

func (p *pair) api() portdapi.Pair {
	out := portdapi.Pair{Interface: p.iface, RTP: p.base, Advertised: p.adv, Gen: p.gen}
	if !p.single {
		out.RTCP = rtcpOf(p.base)
	}
	return out
}

// ports is how many ports the pair holds.
func (p *pair) ports() int {
	if p.single {
		return 1
	}
	return 2
}

// locals are the pair's socket addresses.
func (p *pair) locals() []netip.AddrPort {
	if p.single {
		return []netip.AddrPort{p.base}
	}
	return []netip.AddrPort{p.base, rtcpOf(p.base)}
}

// complete reports whether portd holds every socket of the pair.
func (p *pair) complete() bool { return p.rtp != nil && (p.single || p.rtcp != nil) }

// block names a pair to bind for a call: its RTP address, whether it is a
// single port, and the generation the caller knows it by (0: any).
type block struct {
	rtp    netip.AddrPort
	single bool
	gen    uint64
}

func rtcpOf(base netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(base.Addr(), base.Port()+1)
}

// startGens makes base the start of this run's generations.
func (t *table) startGens(base uint64) { t.firstGen, t.lastGen = base, base }

// issuedLocked reports whether this run of portd handed out generation gen.
func (t *table) issuedLocked(gen uint64) bool { return gen > t.firstGen && gen <= t.lastGen }

func (t *table) nextGen() uint64 {
	t.lastGen++
	return t.lastGen
}

// lookupLocked finds the pair that holds ap (its RTP or RTCP address).
func (t *table) lookupLocked(ap netip.AddrPort) *pair {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if p, ok := t.pairs[ap]; ok {
		return p
	}
	if ap.Port() > 0 {
		if p, ok := t.pairs[netip.AddrPortFrom(ap.Addr(), ap.Port()-1)]; ok && !p.single {
			return p
		}
	}
	return nil
}

// table is portd's state: pools per local address and the pairs bound on
// them. Methods are safe for concurrent use; none blocks on I/O except the
// bind and close system calls.
type table struct {
	mu     sync.Mutex
	set    *ifspec.Set
	pools  map[netip.Addr]*portpool.Pool
	ifaces map[netip.Addr]ifspec.Address // first logical interface of each local address
	pairs  map[netip.AddrPort]*pair
	byCall map[string]map[netip.AddrPort]*pair
	opts   mediasock.Options
	// maxSockets is how many sockets portd may hold (derived from
	// RLIMIT_NOFILE); nsock how many it holds.
	maxSockets int
	nsock      int
	// lastGen numbers allocations; it starts from a random high part so
	// that generations of different runs of portd differ. firstGen is
	// where this run started: generations in (firstGen, lastGen] are this
	// run's.
	firstGen, lastGen uint64
	log               *slog.Logger
	// busyPorts counts binds refused with EADDRINUSE; busyLogged is when
	// that was last logged.
	busyPorts  int
	busyLogged time.Time
}

func newTable(set *ifspec.Set, opts mediasock.Options, quarantine time.Duration, maxSockets int, log *slog.Logger) (*table, error) {
	t := &table{
		set: set, opts: opts, maxSockets: maxSockets, log: log,
		pools:  map[netip.Addr]*portpool.Pool{},
		ifaces: map[netip.Addr]ifspec.Address{},
		pairs:  map[netip.AddrPort]*pair{},
		byCall: map[string]map[netip.AddrPort]*pair{},
	}
	for _, ifc := range set.Interfaces() {
		for _, a := range ifc.Addresses {
			if _, ok := t.pools[a.Local]; ok {
				continue
			}
			p, err := portpool.New(ifc.PortMin, ifc.PortMax, portpool.WithQuarantine(quarantine))
			if err != nil {
				return nil, fmt.Errorf("port pool of %s: %w", a.Local, err)
			}
			t.pools[a.Local] = p
			t.ifaces[a.Local] = a
		}
	}
	return t, nil
}

// address picks the local address leases of iface/family use: the family's
// primary address of the named (or default) interface.
func (t *table) address(iface string, family int) (ifspec.Address, error) {
	f := ifspec.Family(family)
	if f != ifspec.IPv4 && f != ifspec.IPv6 {
		return ifspec.Address{}, fmt.Errorf("%w: family %d (want 4 or 6)", errBadRequest, family)
	}
	if iface == "" {
		ifc, ok := t.set.Default(f)
		if !ok {
			return ifspec.Address{}, fmt.Errorf("%w: no interface has an %s address", errNoFamily, f)
		}
		iface = ifc.Name
	}
	if _, ok := t.set.Lookup(iface); !ok {
		return ifspec.Address{}, fmt.Errorf("%w %q", errUnknownInterface, iface)
	}
	a, ok := t.set.Primary(iface, f)
	if !ok {
		return ifspec.Address{}, fmt.Errorf("%w: %q has no %s address", errNoFamily, iface, f)
	}
	return a, nil
}

// lease binds up to count new pairs (single ports if single) for holder. It
// returns what it could bind; an error only if it bound none.
// The capacity returned is how many pairs (single ports if single) the
// address's range holds in all.
func (t *table) lease(holder, iface string, family, count int, single bool) (out []portdapi.Pair, capacity int, err error) {
	if holder == "" || count <= 0 || count > 1024 {
		return nil, 0, fmt.Errorf("%w: lease needs a holder and a count of 1-1024", errBadRequest)
	}
	a, err := t.address(iface, family)
	if err != nil {
		return nil, 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	capacity = t.pools[a.Local].Size()
	if !single {
		capacity /= 2
	}
	for len(out) < count {
		p, err := t.allocLocked(a, single)
		if err != nil {
			if len(out) > 0 {
				break
			}
			return nil, 0, err
		}
		p.holder = holder
		out = append(out, p.api())
	}
	return out, capacity, nil
}

// allocLocked takes a free pair (or single port) from a's pool and binds
// it. Ports another process holds are left marked used and skipped (a few
// times at most).
func (t *table) allocLocked(a ifspec.Address, single bool) (*pair, error) {
	if t.nsock+2 > t.maxSockets {
		return nil, fmt.Errorf("%w: %d sockets open, limit %d (raise LimitNOFILE / ulimit -n)", errFDLimit, t.nsock, t.maxSockets)
	}
	pool := t.pools[a.Local]
	// Ports found busy stay taken until the search ends, so that it does
	// not pick them again, and then go back to the pool (into quarantine):
	// another program holds them, or a worker that has not yet closed its
	// copy of a socket portd just released. Marking them used for good
	// would lose them for the life of portd (under load one port per such
	// race, until the range ran dry); this way they are tried again later.
	var busy []*pair
	defer func() {
		for _, b := range busy {
			_ = pool.Release(int(b.base.Port()), b.ports())
		}
	}()
	for attempt := 0; ; attempt++ {
		var port int
		var err error
		if single {
			port, err = pool.AllocSingle()
		} else {
			port, err = pool.AllocPair()
		}
		if err != nil {
			return nil, fmt.Errorf("interface %s address %s: %w", a.Name, a.Local, err)
		}
		base := netip.AddrPortFrom(a.Local, uint16(port))
		p := &pair{base: base, single: single, iface: a.Name, adv: a.Advertised, gen: t.nextGen()}
		if err := t.bindLocked(p); err != nil {
			if errors.Is(err, unix.EADDRINUSE) && attempt < 16 {
				busy = append(busy, p)
				t.busyPorts++
				if now := time.Now(); now.Sub(t.busyLogged) >= 5*time.Second {
					t.log.Warn("port busy (another program, or a worker still closing it); trying another", "addr", base, "busy_so_far", t.busyPorts, "err", err)
					t.busyLogged = now
				}
				continue
			}
			_ = pool.Release(port, p.ports())
			return nil, err
		}
		t.pairs[base] = p
		return p, nil
	}
}

func (t *table) bindLocked(p *pair) error {
	if p.single {
		s, err := mediasock.Bind("udp", p.base, t.opts)
		if err != nil {
			return err
		}
		p.rtp = s
		t.nsock++
		return nil
	}
	rtp, rtcp, err := mediasock.BindPair(p.base.Addr(), int(p.base.Port()), t.opts)
	if err != nil {
		return err
	}
	p.rtp, p.rtcp = rtp, rtcp
	t.nsock += 2
	return nil
}

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

// releaseLocked closes portd's copies and returns the ports to the pool
// (into quarantine).
func (t *table) releaseLocked(p *pair) {
	for _, s := range []*mediasock.Socket{p.rtp, p.rtcp} {
		if s != nil {
			_ = s.Close()
			t.nsock--
		}
	}
	if p.call != "" {
		if m := t.byCall[p.call]; m != nil {
			delete(m, p.base)
			if len(m) == 0 {
				delete(t.byCall, p.call)
			}
		}
	}
	delete(t.pairs, p.base)
	if err := t.pools[p.base.Addr()].Release(int(p.base.Port()), p.ports()); err != nil {
		t.log.Error("port pool out of step", "addr", p.base, "err", err)
	}
}

func (t *table) assignLocked(p *pair, call string) {
	if p.call == call {
		return
	}
	if p.call != "" {
		if m := t.byCall[p.call]; m != nil {
			delete(m, p.base)
		}
	}
	p.call, p.holder = call, ""
	m := t.byCall[call]
	if m == nil {
		m = map[netip.AddrPort]*pair{}
		t.byCall[call] = m
	}
	m[p.base] = p
}

// returnLeases releases holder's leases (all, or those with the given RTP
// addresses) that no call uses; it returns the released bases.
func (t *table) returnLeases(holder string, rtp []netip.AddrPort, all bool) []netip.AddrPort {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []netip.AddrPort
	drop := func(p *pair) {
		if p != nil && p.holder == holder && p.call == "" {
			out = append(out, p.base)
			t.releaseLocked(p)
		}
	}
	if all {
		for _, p := range t.pairs {
			drop(p)
		}
		return out
	}
	for _, ap := range rtp {
		drop(t.lookupLocked(ap))
	}
	return out
}

// callChange is what syncCall did: pairs newly assigned to the call, pairs
// it no longer uses (released), and leases it took from their holders
// (revoked).
type callChange struct {
	assigned []*pair
	released []*pair
	revoked  []portdapi.Revoked
	stale    int
}

// syncCall makes the call own exactly the pairs of blocks, binding any that
// are not bound yet (a restored call, or a restart) and releasing the pairs
// it dropped.
//
// A leased pair named with its lease's generation is the holder's own use
// of it (ng-ctl took it from its stock for this call). Named without a
// generation, the record comes from someone who did not get the pair from
// the lease (a restore written without portd.bind): the lease is revoked.
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

// adopt takes a socket a worker handed back after a portd restart. It
// returns false if portd does not know the address (the worker should drop
// it) — the fd is then not kept.
func (t *table) adopt(local netip.AddrPort, fd int) (kept bool, known bool, call string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.lookupLocked(local)
	if p == nil {
		return false, false, ""
	}
	if !p.adopting {
		return false, true, p.call
	}
	s, err := mediasock.FromFD(fd, "udp", local)
	if err != nil {
		t.log.Warn("worker handed back an unusable socket", "addr", local, "err", err)
		return false, true, p.call
	}
	if local == p.base {
		p.rtp = s
	} else {
		p.rtcp = s
	}
	if p.complete() {
		p.adopting = false
	}
	t.nsock++
	return true, true, p.call
}

// callSockets returns the sockets of a call, for handing to a worker.
func (t *table) callSockets(call string) []*mediasock.Socket {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*mediasock.Socket
	for _, p := range t.byCall[call] {
		if p.rtp != nil {
			out = append(out, p.rtp)
		}
		if p.rtcp != nil {
			out = append(out, p.rtcp)
		}
	}
	return out
}

// calls lists the calls that have pairs.
func (t *table) calls() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.byCall))
	for c := range t.byCall {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// status counts ports per interface address.
func (t *table) status(present func(netip.Addr) bool) ([]portdapi.InterfaceStatus, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	leased := map[netip.Addr]int{}
	assigned := map[netip.Addr]int{}
	for _, p := range t.pairs {
		if p.call != "" {
			assigned[p.base.Addr()]++
		} else if p.holder != "" {
			leased[p.base.Addr()]++
		}
	}
	var out []portdapi.InterfaceStatus
	for _, ifc := range t.set.Interfaces() {
		is := portdapi.InterfaceStatus{Name: ifc.Name}
		for _, a := range ifc.Addresses {
			pool := t.pools[a.Local]
			lo, hi := pool.Range()
			is.Addresses = append(is.Addresses, portdapi.AddressStatus{
				Local: a.Local, Advertised: a.Advertised, PortMin: lo, PortMax: hi,
				Used: pool.Used(), Free: pool.Free(), Quarantined: pool.Quarantined(),
				Leased: leased[a.Local], Assigned: assigned[a.Local], Present: present(a.Local),
			})
		}
		out = append(out, is)
	}
	return out, t.nsock
}

// closeAll closes every socket portd holds (at exit).
func (t *table) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.pairs {
		if p.rtp != nil {
			_ = p.rtp.Close()
		}
		if p.rtcp != nil {
			_ = p.rtcp.Close()
		}
	}
	t.pairs = map[netip.AddrPort]*pair{}
	t.byCall = map[string]map[netip.AddrPort]*pair{}
	t.nsock = 0
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
