package rtpfwd

import (
	"context"
	"log/slog"
	"sync"

	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/handoff"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// Run forwards media until ctx ends. Once a call's streams are installed,
// packets flow whatever happens to the bus, portd or ng-ctl.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	eng, err := fwd.New(fwd.Config{Workers: cfg.Loops})
	if err != nil {
		return err
	}
	defer func() { _ = eng.Close() }()
	r := newReconciler(eng, log)

	worker := handoff.NewWorker(cfg.WorkerID, cfg.RuntimeDir, r, log)
	defer worker.Close()
	// Whatever way Run returns, its goroutines stop first (LIFO defers:
	// cancel, then wait, then close the worker's sockets and the engine).
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); _ = worker.Run(ctx) }()
	reg := metrics.NewRegistry("rtp-fwd")
	reg.MustRegister(r.collector(cfg.WorkerID))
	ms, err := metrics.Start(ctx, cfg.Metrics, reg, log)
	if err != nil {
		return err
	}
	defer func() { _ = ms.Close() }()

	conn, err := bus.Connect(ctx, cfg.Bus, cfg.NodeID, "rtp-fwd-"+cfg.WorkerID, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	store, err := nodestate.Open(ctx, conn, nodestate.Options{})
	if err != nil {
		return err
	}
	w, err := nodestate.Calls(store).Watch(ctx, log)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	svc, err := bus.NewService(conn, "rtp-fwd", "rtpkit media forwarding worker "+cfg.WorkerID)
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()
	wg.Add(1)
	go func() { defer wg.Done(); r.publishActivity(ctx, conn, cfg.WorkerID) }()
	log.Info("rtp-fwd ready", "worker", cfg.WorkerID)
	defer sdnotify.AddProbe("forwarding loops", eng.Ping)()
	_ = sdnotify.Ready()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.C():
			if !ok {
				return nil
			}
			switch {
			case ev.Synced:
			case ev.Op == nodestate.OpPut:
				r.put(ev.Value)
			default:
				r.drop(ev.ID)
			}
		}
	}
}
