package rtpfwd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/dtlscert"
	"github.com/rtpkit/rtpkit/pkg/fdlimit"
	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/handoff"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/proctune"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// workerNoFile is the open file limit a worker raises itself to.
const workerNoFile = 1 << 20

// Run forwards media until ctx ends. Once a call's streams are installed,
// packets flow whatever happens to the bus, portd or ng-ctl.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	// A worker holds a copy of every socket of its calls: as many as
	// portd may bind (the units set the same 1048576).
	if limit, err := fdlimit.Raise(workerNoFile); err != nil {
		log.Warn("open file limit below what a worker may hold", "limit", limit, "want", workerNoFile, "err", err)
	}
	changes := make(chan fwd.StreamID, 1024)
	dtmfDest, _ := cfg.dtmfDest() // checked by Validate
	var dtmf *dtmfSink
	if cfg.DTMFEvents || dtmfDest.IsValid() {
		dtmf = newDTMFSink()
	}
	fcfg := fwd.Config{Workers: cfg.Loops, Changes: changes, ThreadSetup: loopScheduling(cfg, log),
		Media: newTranscoder(log, func() *dtmfSink { return dtmf })}
	if dtmf != nil {
		fcfg.DTMF = dtmf.take
	}
	if cert, err := dtlscert.Load(cfg.DTLS); err != nil {
		// Plain and SDES calls go on; DTLS streams get no keys.
		log.Warn("no DTLS certificate: DTLS-SRTP handshakes will fail", "err", err)
	} else {
		fcfg.DTLSCert = &cert.TLS
		log.Info("DTLS certificate", "cert", cert.String())
	}
	eng, err := fwd.New(fcfg)
	if err != nil {
		return err
	}
	defer func() { _ = eng.Close() }()
	pinDir := cfg.PinDir
	if pinDir == "" {
		pinDir = DefaultPinDir(cfg.RuntimeDir)
	}
	off := newOffloader(cfg.FastPath, pinDir, log)
	if err := off.start(); err != nil {
		return fmt.Errorf("--fast-path=on: %w", err)
	}
	r := newReconciler(eng, off, log)
	r.dtmf = dtmf != nil
	r.learning, _ = fwd.ParseLearning(cfg.EndpointLearning) // Validate checked it
	r.allowLoopback = cfg.AllowLoopbackMedia
	// The engine and the kernel let go of the streams before the fast
	// path's handles close (pinned entries stay, for the next run).
	defer func() { r.mu.Lock(); off.close(); r.mu.Unlock() }()

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
	if err := svc.Ready(); err != nil {
		return err
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.publishActivity(ctx, conn, cfg.WorkerID) }()
	wg.Add(1)
	go func() { defer wg.Done(); r.runOffload(ctx.Done(), changes) }()
	if err := r.followPlayDTMF(conn, log); err != nil {
		return err
	}
	if dtmf != nil {
		wg.Add(1)
		go func() { defer wg.Done(); r.publishDTMF(ctx, conn, dtmf, cfg.WorkerID, dtmfDest, log) }()
	}
	log.Info("rtp-fwd ready", "worker", cfg.WorkerID)
	defer cfg.Watchdog.Add("forwarding loops", eng.Ping)()
	_ = sdnotify.Ready()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.C():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				// Without its watch rtp-fwd cannot follow the calls: fail,
				// so that the supervisor starts it again.
				return errors.New("watch of the call records in node state ended")
			}
			switch {
			case ev.Synced:
				r.syncedOffload()
			case ev.Op == nodestate.OpPut:
				r.put(ev.Value)
			default:
				r.drop(ev.ID)
			}
		}
	}
}

// loopScheduling is what each forwarding loop does on its own thread: under
// --scheduling=auto the process's threads are batch tasks, but the loops
// that carry media set themselves to SCHED_OTHER (proctune.LoopScheduling),
// and back to the nice value rtp-fwd started with (proctune.LoopPriority)
// while its control threads run proctune.BackgroundNice above it (Tuning).
func loopScheduling(cfg Config, log *slog.Logger) func() {
	s := proctune.LoopScheduling(cfg.Scheduling)
	if s == proctune.SchedDefault {
		return nil
	}
	prio := proctune.LoopPriority(cfg.Scheduling, cfg.Priority)
	return func() {
		if err := proctune.SetThreadScheduling(s, prio); err != nil {
			log.Warn("cannot set a forwarding loop's scheduling policy", "scheduling", string(s), "err", err)
		}
	}
}
