package portd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/fdlimit"
	"github.com/rtpkit/rtpkit/pkg/fdpass"
	"github.com/rtpkit/rtpkit/pkg/handoff"
	"github.com/rtpkit/rtpkit/pkg/ifspec"
	"github.com/rtpkit/rtpkit/pkg/mediasock"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/portpool"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// DefaultInterface is used when no --interface is given.
const DefaultInterface = "127.0.0.1"

// Run serves until ctx ends: it binds the media sockets, leases them, hands
// them to workers and follows the node's call records.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	set, err := cfg.InterfaceSet()
	if err != nil {
		return err
	}
	// One socket per port of every address, and the reserve: the node
	// sizes its own limit (as far as it may; the units set 1048576).
	need := cfg.FDReserve
	for _, ifc := range set.Interfaces() {
		need += len(ifc.Addresses) * (ifc.PortMax - ifc.PortMin + 1)
	}
	limit, err := fdlimit.Raise(need)
	if err != nil {
		log.Warn("open file limit below what the port ranges need", "limit", limit, "need", need, "err", err)
	}
	maxSockets := max(limit-cfg.FDReserve, 0)
	logCapacity(log, set, limit, maxSockets)

	opts := mediasock.Options{FreeBind: true, TOS: cfg.TOS, RecvBuf: cfg.SocketBuffer, SendBuf: cfg.SocketBuffer, RxqOvfl: true}
	t, err := newTable(set, opts, cfg.Quarantine, maxSockets, log)
	if err != nil {
		return err
	}
	defer t.closeAll()

	conn, err := bus.Connect(ctx, cfg.Bus, cfg.NodeID, "portd", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A bus connection closed for good ends the run like a shutdown, and
	// the run then fails with why: the supervisor restarts the daemon.
	ctx, stopLoss := conn.WithLoss(ctx)
	defer stopLoss()
	defer func() {
		if lerr := conn.LostErr(); lerr != nil {
			err = lerr
		}
	}()
	store, err := nodestate.Open(ctx, conn, nodestate.Options{})
	if err != nil {
		return err
	}
	d := &daemon{t: t, conn: conn, log: log, instance: newInstanceID(), calls: nodestate.Calls(store)}
	t.startGens(genBase(d.instance))

	if err := os.MkdirAll(cfg.RuntimeDir, 0o700); err != nil {
		return fmt.Errorf("runtime dir: %w", err)
	}
	ln, err := fdpass.Listen(filepath.Join(cfg.RuntimeDir, handoff.SocketName), fdpass.SameUID())
	if err != nil {
		return fmt.Errorf("hand-off socket: %w", err)
	}
	defer ln.Close()
	d.ws = newWorkers(t, ln, log)
	reg := metrics.NewRegistry("portd")
	reg.MustRegister(d.collector())
	ms, err := metrics.Start(ctx, cfg.Metrics, reg, log)
	if err != nil {
		return err
	}
	defer func() { _ = ms.Close() }()

	// The call records: every call's sockets, as they come and go. The
	// initial records are applied before anything else is served.
	w, err := d.calls.Watch(ctx, log)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	synced := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.followCalls(ctx, w, synced)
	}()
	select {
	case <-synced:
	case <-ctx.Done():
		return nil
	}
	go d.ws.serve()

	svc, err := bus.NewService(conn, "portd", "rtpkit media sockets and port pools")
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()
	for _, reg := range []error{
		bus.Handle(svc, portdapi.LeaseEndpoint, d.handleLease),
		bus.Handle(svc, portdapi.ReturnEndpoint, d.handleReturn),
		bus.Handle(svc, portdapi.BindEndpoint, d.handleBind),
		bus.Handle(svc, portdapi.ReleaseEndpoint, d.handleRelease),
		bus.Handle(svc, portdapi.ListEndpoint, d.handleList),
	} {
		if reg != nil {
			return reg
		}
	}
	// Pairs holders drop (calls ended, ports replaced), without a reply.
	freeSub, err := bus.Subscribe(conn, portdapi.FreeEvent, func(_ string, f portdapi.Free) {
		d.ws.released(d.t.free(f.Pairs))
	})
	if err != nil {
		return err
	}
	defer func() { _ = freeSub.Unsubscribe() }()
	if err := svc.Ready(); err != nil {
		return err
	}
	// Holders of leases from an earlier run drop them when they hear this.
	if err := bus.Publish(conn, portdapi.StartedEvent, portdapi.Started{Instance: d.instance}); err != nil {
		log.Warn("portd start not announced", "err", err)
	}
	st, n := t.status(hostHas())
	log.Info("portd ready", "interfaces", len(st), "sockets", n, "handoff", ln.Path(), "instance", d.instance)
	defer cfg.Watchdog.Add("port table", t.alive)()
	_ = sdnotify.Ready()
	<-ctx.Done()
	log.Info("portd stopping")
	_ = ln.Close()
	_ = w.Stop()
	wg.Wait()
	return nil
}

type daemon struct {
	t     *table
	ws    *workers
	conn  *bus.Conn
	log   *slog.Logger
	calls *nodestate.Table[nodestate.Call]
	// instance names this run of portd: leases carry it, and a holder that
	// sees another drops the pairs it holds from an earlier run.
	instance string
	// leaseWaits counts the waits of leases that found no usable port
	// (LeaseWait).
	leaseWaits atomic.Uint64
}

// followCalls keeps the table's sockets in line with the call records:
// which local ports each call uses (records are decoded by nodestate's
// call codec, the fastest way to read them).
func (d *daemon) followCalls(ctx context.Context, w *nodestate.Watcher[nodestate.Call], synced chan struct{}) {
	for ev := range w.C() {
		if ev.Synced {
			if synced != nil {
				close(synced)
				synced = nil
			}
			continue
		}
		switch ev.Op {
		case nodestate.OpPut:
			blocks := callBlocks(ev.Value)
			ch, err := d.t.syncCall(ev.ID, blocks)
			if err != nil {
				d.log.Error("call sockets", "call", ev.ID, "err", err)
			}
			d.ws.released(ch.released)
			d.revoke(ev.ID, ch.revoked)
			if len(blocks) == 0 {
				d.ws.callGone(ev.ID)
			} else {
				d.ws.callChanged(ev.ID)
			}
		case nodestate.OpDelete:
			d.ws.released(d.t.dropCall(ev.ID))
			d.ws.callGone(ev.ID)
		}
	}
}

// callBlocks lists the ports a call record uses: per stream, an RTP port
// with RTCP on the next one, or a single port where RTCP is muxed (or sits
// elsewhere, in which case it is a single port of its own); a media's
// sockets of the other family (its second ICE candidates) the same way.
func callBlocks(c nodestate.Call) []block {
	var out []block
	for _, leg := range c.Legs {
		for _, m := range leg.Medias {
			out = streamBlocks(out, m.Streams)
			out = streamBlocks(out, m.Alt)
		}
	}
	return out
}

// streamBlocks appends the port blocks of one set of a media's streams.
func streamBlocks(out []block, streams []nodestate.Stream) []block {
	var rtp, rtcp netip.AddrPort
	var gen, rtcpGen uint64
	for _, s := range streams {
		switch s.Component {
		case 1:
			rtp, gen = s.Local, s.Gen
		case 2:
			rtcp, rtcpGen = s.Local, s.Gen
		}
	}
	if !rtp.IsValid() {
		return out
	}
	paired := rtcp.IsValid() && rtcp.Addr() == rtp.Addr() && rtcp.Port() == rtp.Port()+1
	out = append(out, block{rtp: rtp, single: !paired, gen: gen})
	if rtcp.IsValid() && !paired {
		out = append(out, block{rtp: rtcp, single: true, gen: rtcpGen})
	}
	return out
}

// LeaseWait is how long a lease that finds no usable port waits for ports
// on their way back before it fails: the range is empty, or every port
// tried is still bound elsewhere (EADDRINUSE: a worker that has not
// closed its copy of a released socket yet). Under overload the daemons
// that release ports (portd following the records and the frees, rtp-fwd
// closing its copies) run behind the offers that take them; waiting here
// holds the offers back (ng-ctl's stock waits for this lease) until they
// catch up, where failing at once answered "Ran out of ports" with ports
// about to come free. It retries after 1 ms, then doubling up to 20 ms.
const LeaseWait = 250 * time.Millisecond

func (d *daemon) handleLease(ctx context.Context, req portdapi.LeaseRequest) (portdapi.LeaseReply, error) {
	wait, deadline := time.Millisecond, time.Now().Add(LeaseWait)
	for {
		pairs, capacity, err := d.t.lease(req.Holder, req.Interface, req.Family, req.Count, req.Single)
		if err == nil {
			return portdapi.LeaseReply{Pairs: pairs, Instance: d.instance, Capacity: capacity}, nil
		}
		if !errors.Is(err, portpool.ErrExhausted) && !errors.Is(err, unix.EADDRINUSE) || time.Now().Add(wait).After(deadline) {
			return portdapi.LeaseReply{}, busError(err)
		}
		d.leaseWaits.Add(1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return portdapi.LeaseReply{}, busError(err)
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

func (d *daemon) handleReturn(ctx context.Context, req portdapi.ReturnRequest) (portdapi.ReturnReply, error) {
	if req.Holder == "" {
		return portdapi.ReturnReply{}, bus.Errorf(bus.CodeBadRequest, "return needs a holder")
	}
	bases := d.t.returnLeases(req.Holder, req.RTP, req.All)
	return portdapi.ReturnReply{Returned: len(bases)}, nil
}

func (d *daemon) handleBind(ctx context.Context, req portdapi.BindRequest) (portdapi.BindReply, error) {
	pairs, revoked, err := d.t.bind(req)
	if err != nil {
		return portdapi.BindReply{}, err
	}
	d.revoke(req.Call, revoked)
	d.ws.callChanged(req.Call)
	return portdapi.BindReply{Pairs: pairs}, nil
}

// bind checks a bind request and binds the call's pairs; its errors are
// the bus errors the caller gets.
func (t *table) bind(req portdapi.BindRequest) ([]portdapi.Pair, []portdapi.Revoked, error) {
	if req.Call == "" || len(req.Pairs) == 0 {
		return nil, nil, bus.Errorf(bus.CodeBadRequest, "bind needs a call and its pairs")
	}
	blocks := make([]block, 0, len(req.Pairs))
	for _, p := range req.Pairs {
		if !p.RTP.IsValid() || (p.RTCP.IsValid() && (p.RTCP.Addr() != p.RTP.Addr() || p.RTCP.Port() != p.RTP.Port()+1)) {
			return nil, nil, bus.Errorf(bus.CodeBadRequest, "bind: pair %s/%s: RTCP must be on RTP's address and next port, or absent", p.RTP, p.RTCP)
		}
		blocks = append(blocks, block{rtp: p.RTP, single: !p.RTCP.IsValid()})
	}
	pairs, revoked, err := t.bindCall(req.Call, blocks)
	if err != nil {
		return nil, nil, busError(err)
	}
	return pairs, revoked, nil
}

// revoke tells holders that call took pairs they held as unused leases
// (published after the table lock is released). A pair the holder has
// already taken from its stock, for a call whose record portd has not seen
// yet, is not saved by this: both calls then name the pair (with the same
// generation) and it belongs to whichever record portd saw last. We accept
// that race: a restore binds the ports another node gave the call, and the
// same ports being taken on this node at that very moment is rare.
func (d *daemon) revoke(call string, rs []portdapi.Revoked) {
	for _, r := range rs {
		d.log.Info("leased ports taken by a restored call; revoking them from their holder",
			"call", call, "holder", r.Holder, "pairs", len(r.Pairs))
		if err := bus.Publish(d.conn, portdapi.RevokedEvent, r); err != nil {
			d.log.Warn("revocation not published", "holder", r.Holder, "pairs", len(r.Pairs), "err", err)
		}
	}
}

func (d *daemon) handleRelease(ctx context.Context, req portdapi.ReleaseRequest) (portdapi.ReleaseReply, error) {
	released := d.t.release(req.Locals)
	d.ws.released(released)
	return portdapi.ReleaseReply{Released: len(released)}, nil
}

func (d *daemon) handleList(context.Context, api.Empty) (portdapi.ListReply, error) {
	ifs, n := d.t.status(hostHas())
	return portdapi.ListReply{Interfaces: ifs, Sockets: n, FDLimit: d.t.maxSockets, Workers: d.ws.status(), Instance: d.instance}, nil
}

// genBase makes the generations of a run start high and apart from other
// runs': the first 4 bytes of the instance id, shifted up.
func genBase(instance string) uint64 {
	b, _ := hex.DecodeString(instance)
	var v uint64
	for i := 0; i < 4 && i < len(b); i++ {
		v = v<<8 | uint64(b[i])
	}
	return v << 32
}

func newInstanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// busError gives portd's errors the codes callers act on.
func busError(err error) error {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, errUnknownInterface), errors.Is(err, errNoFamily), errors.Is(err, errNotOurs):
		return bus.Errorf(bus.CodeBadRequest, "%v", err)
	case errors.Is(err, errInUse):
		return bus.Errorf(bus.CodeConflict, "%v", err)
	}
	return bus.Errorf(bus.CodeUnavailable, "%v", err)
}

// hostHas returns a test of whether an address is configured on the host.
func hostHas() func(netip.Addr) bool {
	have := map[netip.Addr]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil {
				have[pfx.Addr().Unmap()] = true
			}
		}
	}
	return func(a netip.Addr) bool { return have[a] }
}

// logCapacity says how many calls fit: by ports on each address, and by
// file descriptors (a two-party call with one medium holds two pairs, four
// sockets, in portd and again in its worker).
func logCapacity(log *slog.Logger, set *ifspec.Set, limit, maxSockets int) {
	have := hostHas()
	fdCalls := maxSockets / 4
	for _, ifc := range set.Interfaces() {
		for _, a := range ifc.Addresses {
			pairs := (ifc.PortMax - ifc.PortMin + 1) / 2
			log.Info("interface address", "interface", ifc.Name, "local", a.Local, "advertised", a.SDPAddr(),
				"ports", fmt.Sprintf("%d-%d", ifc.PortMin, ifc.PortMax), "calls_by_ports", pairs/2, "calls_by_fds", fdCalls)
			if !have(a.Local) {
				log.Warn("address is not on this host yet; its sockets are bound with FREEBIND and receive once it is added", "local", a.Local)
			}
		}
	}
	log.Info("open file limit", "nofile", limit, "media_sockets_max", maxSockets)
}
