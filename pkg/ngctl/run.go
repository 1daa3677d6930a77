package ngctl

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/calls"
	"github.com/rtpkit/rtpkit/pkg/ngserver"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/portd"
	"github.com/rtpkit/rtpkit/pkg/rtpfwd"
)

// LeaseHolder is the name ng-ctl's port leases are held under; a restarted
// ng-ctl gives back, by this name, what its earlier run held unused.
const LeaseHolder = "ng-ctl"

// Run serves the ng protocol until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	conn, err := bus.Connect(ctx, cfg.Bus, cfg.NodeID, "ng-ctl", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	store, err := nodestate.Open(ctx, conn, nodestate.Options{})
	if err != nil {
		return err
	}
	callTable := nodestate.Calls(store)

	ports := portd.Client{Conn: conn}
	stock := portd.NewStock(ctx, ports, LeaseHolder, portd.StockOptions{Log: log})
	if err := stock.Follow(conn); err != nil {
		return err
	}
	states := newStateStore(callTable, log)
	engine := calls.New(calls.Config{
		Node: cfg.NodeID, Ports: stock, Store: states, MaxSessions: cfg.MaxSessions, Log: log,
		Timers: calls.Timers{Timeout: cfg.Timeout, SilentTimeout: cfg.SilentTimeout, OfferTimeout: cfg.OfferTimeout,
			FinalTimeout: cfg.FinalTimeout, DeleteDelay: cfg.DeleteDelay},
	})
	states.mu.Lock()
	states.current = engine.Record
	states.mu.Unlock()

	// Calls made before a restart, and calls restored from other nodes.
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	recs, err := callTable.List(lctx)
	cancel()
	if err != nil {
		return fmt.Errorf("load calls from node state: %w", err)
	}
	var records []nodestate.Call
	for _, r := range recs {
		records = append(records, r.Value)
	}
	engine.Load(records)
	if len(records) > 0 {
		log.Info("calls loaded from node state", "calls", len(records))
	}

	// portd: interfaces and our leases; retried in the background until it
	// answers (rtpctl up and systemd start it first).
	go func() {
		for attempt := 0; ctx.Err() == nil; attempt++ {
			err := connectPorts(ctx, ports, stock, engine, log)
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
	var act activity
	if err := act.follow(conn); err != nil {
		return err
	}
	engine.SetActivity(act.lookup, 3*rtpfwd.ActivityInterval)
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
	if err := followForeign(ctx, callTable, engine, cfg.NodeID, log); err != nil {
		return err
	}

	proto := newProtocol(engine, log)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv, err := ngserver.New(ngserver.Config{
		UDP: cfg.Listeners(), TCP: cfg.ListenTCPNG, HTTP: cfg.ListenHTTP,
		Handler: proto.Handle, HTTPExtra: mux, Log: log,
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
	if err := bus.Handle(svc, "ng", conn.Subject("ng-ctl", "ng"), func(ctx context.Context, doc ngDoc) (ngDoc, error) {
		b, err := bencode.FromJSON(doc, bencode.Limits{})
		if err != nil {
			return nil, bus.Errorf(bus.CodeBadRequest, "not a JSON ng document: %v", err)
		}
		return ngDoc(proto.Handle(ctx, bencode.ToJSON(b), netip.AddrPort{})), nil
	}); err != nil {
		_ = srv.Close()
		return err
	}
	a := srv.Addrs()
	log.Info("ng-ctl ready", "udp", a.UDP, "tcp", a.TCP, "http", a.HTTP)
	err = srv.Serve(ctx)
	stock.Wait()
	return err
}

// ngDoc is a JSON document carried as is (not re-encoded) over the bus.
type ngDoc []byte

// MarshalJSON returns the document.
func (d ngDoc) MarshalJSON() ([]byte, error) {
	if len(d) == 0 {
		return []byte("null"), nil
	}
	return d, nil
}

// UnmarshalJSON keeps the document.
func (d *ngDoc) UnmarshalJSON(b []byte) error { *d = append((*d)[:0], b...); return nil }

// connectPorts learns portd's interfaces, gives back the leases an earlier
// run of ng-ctl held, and warms the stock of each family's default
// interface.
func connectPorts(ctx context.Context, ports portd.Client, stock *portd.Stock, engine *calls.Engine, log *slog.Logger) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := ports.List(lctx)
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

// followForeign keeps the engine in step with call records other writers
// own (redis-sync restoring calls of other nodes).
func followForeign(ctx context.Context, t *nodestate.Table[nodestate.Call], e *calls.Engine, node string, log *slog.Logger) error {
	// Own calls are written by this process only: skip them undecoded.
	w, err := t.WatchSkipping(ctx, log, func(id string, op nodestate.Op) bool {
		if op == nodestate.OpDelete {
			return !e.IsForeign(id)
		}
		return e.IsOwn(id)
	})
	if err != nil {
		return err
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for ev := range w.C() {
			if ev.Synced {
				continue
			}
			switch ev.Op {
			case nodestate.OpPut:
				if ev.Value.Foreign || ev.Value.Owner != node {
					e.Load([]nodestate.Call{ev.Value})
				}
			case nodestate.OpDelete:
				e.Forget(ev.ID)
			}
		}
	}()
	return nil
}
