package ngctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/calls"
	"github.com/rtpkit/rtpkit/pkg/dtlscert"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/ngctl/portstock"
	"github.com/rtpkit/rtpkit/pkg/ngserver"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// LeaseHolder is the name ng-ctl's port leases are held under; a restarted
// ng-ctl gives back, by this name, what its earlier run held unused.
const LeaseHolder = "ng-ctl"

// Run serves the ng protocol until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	conn, err := bus.Connect(ctx, cfg.Bus, cfg.NodeID, "ng-ctl", log)
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
	states := newStateStore(nil, log)
	store, err := nodestate.Open(ctx, conn, nodestate.Options{})
	if err != nil {
		return err
	}
	callTable := nodestate.Calls(store)
	states.calls = callTable
	// Ended calls leave delete markers that every daemon's start replays:
	// purged from the start on, concurrently with the load below.
	go purgeMarkers(ctx, store, cfg.StatePurgeAge, cfg.StatePurgeInterval, log)

	// Offers waiting on portd for ports take at most half of the ng
	// server's handler slots: deletes, pings and queries keep the rest.
	stock := portstock.New(ctx, conn, LeaseHolder, portstock.Options{Log: log, MaxWaiting: ngserver.DefaultMaxInFlight / 2})
	if err := stock.Follow(conn); err != nil {
		return err
	}
	var fingerprint func(string) (string, error)
	if cert, err := dtlscert.Load(cfg.DTLS); err != nil {
		// SDES and plain calls go on; DTLS is neither offered nor done.
		log.Warn("no DTLS certificate: DTLS-SRTP is not offered", "err", err)
	} else {
		fingerprint = cert.Fingerprint
		log.Info("DTLS certificate", "cert", cert.String())
	}
	engine := calls.New(calls.Config{
		DTLSFingerprint: fingerprint,
		Node:            cfg.NodeID, Ports: stock, Store: states, MaxSessions: cfg.MaxSessions, Limits: calls.Limits{MaxMedia: cfg.MaxMedia, MaxLegs: cfg.MaxLegs}, ActiveSwitchover: cfg.ActiveSwitchover, Log: log,
		Timers: calls.Timers{Timeout: cfg.Timeout, SilentTimeout: cfg.SilentTimeout, OfferTimeout: cfg.OfferTimeout,
			FinalTimeout: cfg.FinalTimeout, DeleteDelay: cfg.DeleteDelay},
	})
	go guardStateSize(ctx, store, engine, cfg.StateMaxBytes, log)
	states.mu.Lock()
	states.current = engine.Record
	states.mu.Unlock()

	// Calls made before a restart, and calls restored from other nodes;
	// then, in the background, what redis-sync writes.
	n, err := followRecords(ctx, callTable, engine, states.echo, 10*time.Second, log)
	if err != nil {
		return fmt.Errorf("load calls from node state: %w", err)
	}
	if n > 0 {
		log.Info("calls loaded from node state", "calls", n)
	}

	// portd: interfaces and our leases; retried in the background until it
	// answers (rtpctl up and systemd start it first).
	go func() {
		for attempt := 0; ctx.Err() == nil; attempt++ {
			err := connectPorts(ctx, conn, stock, engine, log)
			if err == nil {
				return
			}
			if attempt == 0 {
				log.Warn("portd not answering yet; offers fail until it does", "err", err)
			} else if attempt%10 == 0 {
				log.Warn("still no port leases from portd", "attempts", attempt+1, "err", err)
			} else {
				log.Debug("port leases not ready", "attempt", attempt+1, "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()

	// Packet activity from the forwarding workers drives the media timers.
	// No news from a worker (bus down, reports lost) holds its calls'
	// media timers instead of ending them.
	act := newActivity(log)
	if err := act.follow(conn); err != nil {
		return err
	}
	engine.SetActivity(act.lookup, 3*fwdapi.ActivityInterval)
	engine.SetNews(act.news, fwdapi.StaleAfter)
	go act.watch(ctx)
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				act.prune(now.Add(-2 * time.Hour))
			}
		}
	}()

	go states.run(ctx)
	go engine.RunTimers(ctx)

	proto := newProtocol(engine, log)
	proto.publishDTMF = func(p ngapi.PlayDTMF) error { return bus.Publish(conn, ngapi.PlayDTMFEvent, p) }
	proto.metrics = newNGMetrics()
	reg := metrics.NewRegistry("ng-ctl")
	reg.MustRegister(proto.metrics.requests, proto.metrics.errors, proto.metrics.duration, proto.unsupported.counter, engineCollector(engine), stockCollector(stock))
	ms, err := metrics.Start(ctx, cfg.Metrics, reg, log)
	if err != nil {
		return err
	}
	defer func() { _ = ms.Close() }()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle(metrics.Path, metrics.Handler(reg, log))
	srv, err := ngserver.New(ngserver.Config{
		UDP: cfg.Listeners(), TCP: cfg.ListenTCPNG, HTTP: cfg.ListenHTTP,
		Handler: proto.Handle, HTTPExtra: mux, Log: log,
		MaxConns: cfg.NGMaxConns, MaxConnsPerClient: cfg.NGMaxConnsPerClient,
	})
	if err != nil {
		return err
	}
	svc, err := bus.NewService(conn, "ng-ctl", "rtpkit ng control protocol")
	if err != nil {
		_ = srv.Close()
		return err
	}
	defer func() { _ = svc.Stop() }()
	// `rtpctl ng JSON` sends one ng document over the bus.
	if err := bus.Handle(svc, ngapi.NGEndpoint, func(ctx context.Context, doc json.RawMessage) (json.RawMessage, error) {
		b, err := bencode.FromJSON(doc, bencode.Limits{})
		if err != nil {
			return nil, bus.Errorf(bus.CodeBadRequest, "not a JSON ng document: %v", err)
		}
		return json.RawMessage(proto.Handle(ctx, bencode.ToJSON(b), netip.AddrPort{})), nil
	}); err != nil {
		_ = srv.Close()
		return err
	}
	// rtpctl list, session, terminate, get and set (ctl.go).
	if err := serveCtl(svc, conn, engine); err != nil {
		_ = srv.Close()
		return err
	}
	if err := svc.Ready(); err != nil {
		_ = srv.Close()
		return err
	}
	a := srv.Addrs()
	log.Info("ng-ctl ready", "udp", a.UDP, "tcp", a.TCP, "http", a.HTTP)
	defer cfg.Watchdog.Add("call table", func(context.Context) error { engine.Counts(); return nil })()
	_ = sdnotify.Ready()
	err = srv.Serve(ctx)
	stock.Wait()
	return err
}

// connectPorts learns portd's interfaces, gives back the leases an earlier
// run of ng-ctl held, and warms the stock of each family's default
// interface.
func connectPorts(ctx context.Context, conn *bus.Conn, stock *portstock.Stock, engine *calls.Engine, log *slog.Logger) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := bus.Request(lctx, conn, portdapi.ListEndpoint, api.Empty{})
	if err != nil {
		return err
	}
	var ifaces []calls.Interface
	families := map[int]bool{}
	for _, ifc := range l.Interfaces {
		ci := calls.Interface{Name: ifc.Name}
		for _, a := range ifc.Addresses {
			f := 4
			if a.Local.Is6() {
				f = 6
			}
			ci.Families = append(ci.Families, f)
			families[f] = true
		}
		ifaces = append(ifaces, ci)
	}
	engine.SetInterfaces(ifaces)
	if err := stock.Init(lctx); err != nil {
		return err
	}
	n, err := stock.Return(lctx)
	if err != nil {
		return err
	}
	for f := range families {
		if err := stock.Warm(lctx, "", f, false); err != nil {
			log.Warn("port stock not warmed", "family", f, "err", err)
		}
	}
	log.Info("port leases ready", "interfaces", len(ifaces), "returned_from_earlier_run", n)
	return nil
}

// redisMark is how a record redis-sync wrote looks in its JSON (the
// Source field; the marker cannot occur inside a string value, where
// quotes are escaped).
var redisMark = []byte(`"source":"` + nodestate.SourceRedis + `"`)

// followRecords loads every call record there is into the engine (calls
// made before a restart, calls restored from other nodes) and returns how
// many, once they are in; it waits at most timeout for them. It then keeps
// the engine in step, until ctx ends, with what redis-sync writes (and
// tells echo, if not nil, of every record it sees, ng-ctl's own writes
// included, which is how the state store confirms them):
//
//   - Records redis-sync writes (Source "redis") are loaded, own or
//     foreign: a call restored as own after a whole-node restart, a foreign
//     call made own (rtpctl active), an own call made foreign (rtpctl
//     standby, or another node taking it over). Loading updates a call the
//     engine has in place.
//   - Every other record is ng-ctl's own write: skipped undecoded (loading
//     it back could only turn a call back to an older state, or bring back
//     a call that has ended since).
//   - A delete is applied to foreign calls only (own calls end here).
func followRecords(ctx context.Context, t *nodestate.Table[nodestate.Call], e *calls.Engine, echo func(id string, op nodestate.Op, raw []byte), timeout time.Duration, log *slog.Logger) (int, error) {
	// loading is true until the records present at start are in: the skip
	// func, which runs ahead of the loop below, keeps all of those.
	var loading atomic.Bool
	loading.Store(true)
	w, err := t.WatchSkippingRaw(ctx, log, func(id string, op nodestate.Op, raw []byte) bool {
		if echo != nil {
			echo(id, op, raw)
		}
		switch {
		case loading.Load():
			return false
		case op == nodestate.OpDelete:
			return !e.IsForeign(id)
		}
		return !bytes.Contains(raw, redisMark)
	})
	if err != nil {
		return 0, err
	}
	synced := make(chan int, 1)
	go func() {
		defer func() { _ = w.Stop() }()
		initial := 0
		for ev := range w.C() {
			switch {
			case ev.Synced:
				if loading.Load() {
					loading.Store(false)
					synced <- initial
				}
			case loading.Load(): // a record present at start
				if ev.Op == nodestate.OpPut {
					e.Load([]nodestate.Call{ev.Value})
					initial++
				}
			case ev.Op == nodestate.OpPut:
				// Passed the skip func while loading was still on, or
				// written by redis-sync.
				if ev.Value.Source == nodestate.SourceRedis {
					e.Load([]nodestate.Call{ev.Value})
				}
			case ev.Op == nodestate.OpDelete:
				if e.IsForeign(ev.ID) {
					e.Forget(ev.ID)
				}
			}
		}
	}()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case n := <-synced:
		return n, nil
	case <-tm.C:
		_ = w.Stop()
		return 0, fmt.Errorf("call records not read within %s", timeout)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
