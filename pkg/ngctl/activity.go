package ngctl

import (
	"net/netip"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/calls"
)

// activity keeps what the forwarding workers report of each socket.
type activity struct {
	mu sync.RWMutex
	m  map[netip.AddrPort]calls.Observed
}

// follow subscribes to the workers' reports.
func (a *activity) follow(c *bus.Conn) error {
	a.m = map[netip.AddrPort]calls.Observed{}
	_, err := bus.Subscribe(c, fwdapi.ActivityEvent, func(_ string, msg fwdapi.Activity) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, s := range msg.Streams {
			a.m[s.Local] = calls.Observed{LastPacket: s.LastPacket, Packets: s.Packets, Bytes: s.Bytes, Errors: s.Errors, KernelDrops: s.KernelDrops, Endpoint: s.Endpoint,
				Confirmed: s.Confirmed, Offloaded: s.Offloaded}
		}
	})
	return err
}

// lookup is the engine's Activity.
func (a *activity) lookup(local netip.AddrPort) (calls.Observed, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	o, ok := a.m[local]
	return o, ok
}

// prune drops sockets silent since olderThan (called now and then).
func (a *activity) prune(olderThan time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, o := range a.m {
		if o.LastPacket.Before(olderThan) {
			delete(a.m, k)
		}
	}
}
