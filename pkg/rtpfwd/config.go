// Package rtpfwd is the forwarding worker daemon: it receives its sockets
// from portd and its rules from node state, and moves RTP/RTCP between the
// legs of each call.
package rtpfwd

import (
	"flag"
	"fmt"
	"net"
	"net/netip"

	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/dtlscert"
	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// Config is rtp-fwd's configuration.
type Config struct {
	cli.Common
	RuntimeDir string
	WorkerID   string
	Loops      int
	// Metrics is where to serve /metrics (--metrics-rtp-fwd); empty: off.
	Metrics string
	// FastPath is --fast-path: auto, on or off (FastPathAuto...).
	FastPath string
	// EndpointLearning is --endpoint-learning as rtpengine's: delayed,
	// immediate, off or heuristic (see fwd.Learning); every stream of this
	// worker learns so.
	EndpointLearning string
	// AllowLoopbackMedia is --allow-loopback-media: media may go to a
	// loopback destination from sockets on other addresses too.
	AllowLoopbackMedia bool
	// PinDir is where the fast path's maps and attachments are pinned
	// (--fast-path-pin-dir); empty: <runtime-dir>/bpf.
	PinDir string
	// DTMFEvents is --dtmf-events: the RFC 4733 events parties send are
	// published on the bus (rtpctl dtmf --follow); DTMFLogDest is
	// --dtmf-log-dest (host:port, rtpengine's option), where each event
	// also goes as rtpengine's JSON datagram (and which turns the events
	// on). Streams whose events are followed stay out of the fast path.
	DTMFEvents  bool
	DTMFLogDest string
	// DTLS says where the node's DTLS certificate is (pkg/dtlscert).
	DTLS dtlscert.Options
	// Watchdog takes the daemon's liveness probes (pkg/sdnotify). Not an
	// option: the daemon's main sets it; nil (as in tests) keeps none.
	Watchdog *sdnotify.Watchdog
}

// RegisterFlags adds rtp-fwd's options.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	fs.StringVar(&c.RuntimeDir, "runtime-dir", "/run/rtpkit", "`dir` for the node's Unix sockets")
	fs.StringVar(&c.WorkerID, "worker-id", "0", "`id` of this worker towards portd (a restarted worker with the same id gets its sockets back)")
	fs.IntVar(&c.Loops, "loops", 0, "forwarding loops, one per core (`N`; 0 = number of CPUs)")
	metrics.RegisterFlag(fs, &c.Metrics, "rtp-fwd")
	fs.StringVar(&c.FastPath, "fast-path", FastPathAuto, "forward latched streams (IPv4 or IPv6) in the kernel (eBPF): `auto` (when the kernel and privileges allow), on (refuse to start without it) or off")
	fs.StringVar(&c.EndpointLearning, "endpoint-learning", "delayed", "RTP endpoint learning: `delayed` (3 s after the signalling, then the first packet's source), immediate (the first packet's source), off (the SDP's endpoint only) or heuristic (delayed, but a source matching the SDP's address and port, then address, then port, is preferred), as rtpengine's")
	fs.BoolVar(&c.AllowLoopbackMedia, "allow-loopback-media", false, "send media to loopback addresses a party signals also from media sockets on other addresses (lab use; a node on loopback always may)")
	dtlscert.RegisterFlags(fs, &c.DTLS)
	fs.BoolVar(&c.DTMFEvents, "dtmf-events", false, "publish the DTMF (RFC 4733) events parties send on the bus, for rtpctl dtmf --follow (streams with telephone-event then stay out of the fast path)")
	fs.StringVar(&c.DTMFLogDest, "dtmf-log-dest", "", "also send each DTMF event as rtpengine's JSON to this UDP `host:port` (implies --dtmf-events)")
	fs.StringVar(&c.PinDir, "fast-path-pin-dir", "", "bpffs `dir` where the fast path is pinned so it outlives restarts (mounted if needed; default <runtime-dir>/bpf)")
}

// Validate checks the options.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.WorkerID == "" {
		return cli.Usagef("--worker-id: empty")
	}
	if c.Loops < 0 {
		return cli.Usagef("--loops %d: must be >= 0", c.Loops)
	}
	if _, ok := fwd.ParseLearning(c.EndpointLearning); !ok && c.EndpointLearning != "" {
		return cli.Usagef("--endpoint-learning %q: want delayed, immediate, off or heuristic", c.EndpointLearning)
	}
	if c.DTMFLogDest != "" {
		if _, err := c.dtmfDest(); err != nil {
			return cli.Usagef("--dtmf-log-dest %q: %v", c.DTMFLogDest, err)
		}
	}
	switch c.FastPath {
	case FastPathAuto, FastPathOn, FastPathOff:
	default:
		return cli.Usagef("--fast-path %q: want auto, on or off", c.FastPath)
	}
	return metrics.ValidateAddr("rtp-fwd", c.Metrics)
}

// dtmfDest resolves --dtmf-log-dest (invalid when unset).
func (c *Config) dtmfDest() (netip.AddrPort, error) {
	if c.DTMFLogDest == "" {
		return netip.AddrPort{}, nil
	}
	a, err := net.ResolveUDPAddr("udp", c.DTMFLogDest)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := a.AddrPort()
	if !ap.IsValid() || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("want host:port")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
