package ngctl

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/calls"
)

// forgetWorkerAfter is how long a worker may stay silent, while another
// worker is heard from, before ng-ctl forgets it: its sockets then count
// as held by the freshest worker.
const forgetWorkerAfter = 10 * time.Minute

// activity keeps what the forwarding workers report of each socket, which
// worker reported it, and when ng-ctl last heard from each worker.
type activity struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.RWMutex
	m       map[netip.AddrPort]calls.Observed
	holder  map[netip.AddrPort]string // the worker that last reported the socket
	workers map[string]*workerNews
}

// workerNews is when ng-ctl last heard from a worker, since when without a
// gap longer than fwdapi.StaleAfter, and whether it has said the worker
// went silent.
type workerNews struct {
	heard, since time.Time
	silent       bool
}

// newActivity returns an empty activity store.
func newActivity(log *slog.Logger) *activity {
	return &activity{log: log, now: time.Now, m: map[netip.AddrPort]calls.Observed{},
		holder: map[netip.AddrPort]string{}, workers: map[string]*workerNews{}}
}

// follow subscribes to the workers' reports.
func (a *activity) follow(c *bus.Conn) error {
	_, err := bus.Subscribe(c, fwdapi.ActivityEvent, func(_ string, msg fwdapi.Activity) { a.take(msg) })
	if err != nil {
		return fmt.Errorf("follow activity: %w", err)
	}
	return nil
}

// take records one activity message.
func (a *activity) take(msg fwdapi.Activity) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.workers[msg.Worker]
	switch {
	case w == nil:
		w = &workerNews{since: now}
		a.workers[msg.Worker] = w
	case now.Sub(w.heard) > fwdapi.StaleAfter:
		a.log.Info("news from worker again", "worker", msg.Worker, "silent_for", now.Sub(w.heard).Round(time.Millisecond))
		w.since = now
	}
	w.heard, w.silent = now, false
	for _, s := range msg.Streams {
		if prev := a.m[s.Local]; s.DTLSIn == "" && prev.Call == s.Call { // keys go out once: keep the last ones
			s.DTLSIn, s.DTLSOut = prev.DTLSIn, prev.DTLSOut
		}
		a.m[s.Local] = calls.Observed{Call: s.Call, DTLSIn: s.DTLSIn, DTLSOut: s.DTLSOut, LastPacket: s.LastPacket, Packets: s.Packets, Bytes: s.Bytes, Errors: s.Errors, KernelDrops: s.KernelDrops, SRTPFailures: s.SRTPFailures, SRTPInROC: s.SRTPInROC, SRTPOutROC: s.SRTPOutROC, Endpoint: s.Endpoint,
			Confirmed: s.Confirmed, Offloaded: s.Offloaded, SSRC: s.SSRC}
		a.holder[s.Local] = msg.Worker
	}
}

// lookup is the engine's Activity.
func (a *activity) lookup(local netip.AddrPort) (calls.Observed, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	o, ok := a.m[local]
	return o, ok
}

// news is the engine's News: the worker that reported local last, or, for
// a socket no known worker reported, the worker heard from last.
func (a *activity) news(local netip.AddrPort) (heard, since time.Time, ok bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if w := a.workers[a.holder[local]]; w != nil {
		return w.heard, w.since, true
	}
	for _, w := range a.workers {
		if !ok || w.heard.After(heard) {
			heard, since, ok = w.heard, w.since, true
		}
	}
	return heard, since, ok
}

// watch warns once per silence about every worker not heard from for
// longer than fwdapi.StaleAfter, until ctx ends.
func (a *activity) watch(ctx context.Context) {
	t := time.NewTicker(fwdapi.ActivityInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := a.now()
		a.mu.Lock()
		for id, w := range a.workers {
			if !w.silent && now.Sub(w.heard) > fwdapi.StaleAfter {
				w.silent = true
				a.log.Warn("no news from worker: its calls' media timers wait", "worker", id, "last_heard", w.heard.Format(time.RFC3339Nano))
			}
		}
		a.mu.Unlock()
	}
}

// prune drops sockets silent since olderThan and workers not heard from
// for forgetWorkerAfter while another one is (called now and then): a bus
// outage forgets no worker.
func (a *activity) prune(olderThan time.Time) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	var freshest time.Time
	for _, w := range a.workers {
		if w.heard.After(freshest) {
			freshest = w.heard
		}
	}
	for k, o := range a.m {
		if o.LastPacket.Before(olderThan) {
			delete(a.m, k)
			delete(a.holder, k)
		}
	}
	for id, w := range a.workers {
		if now.Sub(freshest) <= fwdapi.StaleAfter && now.Sub(w.heard) > forgetWorkerAfter {
			delete(a.workers, id)
		}
	}
}
