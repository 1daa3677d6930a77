package rtpfwd

import (
	"net"
	"net/netip"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// Destinations from signalling are checked before a stream is given one:
// media is not sent to multicast or broadcast addresses, to the node's own
// media sockets (a forwarding loop between two of our ports), nor, from a
// socket on a non-loopback address, to a loopback address (a local
// service) unless --allow-loopback-media. A node whose media sockets are
// on loopback (a lab, the tests) sends to loopback as before: such a
// socket reaches nothing else. rtpengine does not filter at all; these are
// the destinations no SIP party can have.

// refusal says why media from local must not go to dest, "" if it may.
// An unusable dest (hold, no answer yet) is not a refusal: it has no sink
// anyway.
func (r *reconciler) refusalLocked(local, dest netip.AddrPort) string {
	if !usable(dest) {
		return ""
	}
	a := dest.Addr().Unmap()
	switch {
	case a.IsMulticast():
		return "multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast address"
	case a.Is4() && r.broadcastLocked(a):
		return "broadcast address of one of the host's subnets"
	case a.Is4() && a.As4()[0] == 0:
		return "unspecified address"
	case a.IsLoopback() && !r.allowLoopback && !local.Addr().Unmap().IsLoopback():
		return "loopback address (--allow-loopback-media is off)"
	}
	own := netip.AddrPortFrom(a, dest.Port())
	if _, ok := r.fds[own]; ok {
		return "one of the node's media sockets"
	}
	if _, ok := r.nodeLocals[own]; ok {
		return "one of the node's media sockets"
	}
	return ""
}

// filterLocked returns dest, or no destination when refusalLocked refuses
// it; a refusal is counted and logged once per socket and destination.
func (r *reconciler) filterLocked(call string, local, dest netip.AddrPort) netip.AddrPort {
	why := r.refusalLocked(local, dest)
	if why == "" {
		delete(r.refusedTo, local)
		return dest
	}
	if r.refusedTo[local] != dest {
		r.refusedTo[local] = dest
		r.refused++
		r.log.Warn("media destination refused: this party gets no media (the call goes on)",
			"call", call, "local", local, "destination", dest, "reason", why)
	}
	return netip.AddrPort{}
}

// trackLocalsLocked keeps nodeLocals, the media sockets of every call
// record (whichever worker serves them), in step with call id's record
// becoming c (nil: the call ended).
func (r *reconciler) trackLocalsLocked(id string, c *nodestate.Call) {
	for _, local := range recordLocals(r.calls[id]) {
		if r.nodeLocals[local] == id {
			delete(r.nodeLocals, local)
		}
	}
	if c == nil {
		return
	}
	for _, local := range recordLocals(*c) {
		r.nodeLocals[netip.AddrPortFrom(local.Addr().Unmap(), local.Port())] = id
	}
}

// broadcastsEvery is how often the host's subnet broadcast addresses are
// read again (interfaces change seldom).
const broadcastsEvery = 30 * time.Second

// broadcastLocked reports whether a is the directed broadcast address of
// one of the host's IPv4 subnets.
func (r *reconciler) broadcastLocked(a netip.Addr) bool {
	if r.broadcasts == nil || time.Since(r.broadcastsAt) > broadcastsEvery {
		read := r.readBroadcasts
		if read == nil {
			read = directedBroadcasts
		}
		r.broadcasts, r.broadcastsAt = read(), time.Now()
	}
	return r.broadcasts[a]
}

// directedBroadcasts lists the subnet-directed broadcast address of every
// IPv4 address of the host's interfaces (prefixes up to /30: /31 and /32
// have none).
func directedBroadcasts() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip4 := n.IP.To4()
		ones, bits := n.Mask.Size()
		if ip4 == nil || bits != 32 || ones > 30 {
			continue
		}
		var b [4]byte
		for i := range b {
			b[i] = ip4[i] | ^n.Mask[len(n.Mask)-4+i]
		}
		out[netip.AddrFrom4(b)] = true
	}
	return out
}
