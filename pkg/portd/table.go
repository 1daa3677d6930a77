package portd

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

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
