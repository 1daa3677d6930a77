package calls

// Our sockets for a call's medias, taken from portd's stock, and the
// interfaces they are on.

import (
	"context"
	"net/netip"
	"slices"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/sdp"
)

// takeSockets takes from portd the sockets a media that is not rejected
// lacks: the receiver's, chosen for the sender's endpoint, and the
// sender's.
func (e *Engine) takeSockets(ctx context.Context, x *exchange, sm, rm *media, m *sdp.Media, endpoint netip.AddrPort) error {
	req, offer := x.req, x.offer
	// Our sockets for the receiver, chosen for the sender's endpoint.
	rSingle := offer && req.RTCPMux["require"] && m.IsRTP()
	// A party that moves keeps its ports under port-latching, and under
	// ICE towards the receiver unless no-port-latching (the candidates
	// say where it is, as rtpengine's __get_endpoint_map).
	latched := req.flag("port-latching") || rm.ice != nil && !req.flag("no-port-latching")
	if !rm.local.RTP.IsValid() || (rm.key.IsValid() && !sameEndpoint(rm.key, endpoint) && !latched) {
		p, err := e.take(ctx, x.receiver.iface, x.receiver.family, rSingle, x.taken)
		if err != nil {
			return err
		}
		if rm.local.RTP.IsValid() && rm.ice != nil {
			// New candidates: an ICE restart towards the receiver, with
			// new credentials of ours (rtpengine's new endpoint map).
			ice, err := newICE(x.rand, rm.ice.Controlling)
			if err != nil {
				return err
			}
			ice.RemoteUfrag, ice.RemotePwd, ice.Lite, ice.Trickle = rm.ice.RemoteUfrag, rm.ice.RemotePwd, rm.ice.Lite, rm.ice.Trickle
			rm.ice = ice
		}
		rm.local = p
	}
	rm.key = endpoint
	// Our sockets for the sender, advertised to it in the reply to come.
	if !sm.local.RTP.IsValid() {
		sSingle := offer && sm.rtcpMuxAccepted
		p, err := e.take(ctx, x.sender.iface, x.sender.family, sSingle, x.taken)
		if err != nil {
			return err
		}
		sm.local = p
	}
	return nil
}

// take gets a pair from the stock, falling back to the default interface
// when the named one is unknown.
func (e *Engine) take(ctx context.Context, iface string, family int, single bool, taken *[]portdapi.Pair) (portdapi.Pair, error) {
	p, err := e.cfg.Ports.Take(ctx, iface, family, single)
	if err != nil {
		e.log.Warn("no ports for a call", "interface", iface, "family", family, "err", err)
		return portdapi.Pair{}, ErrOutOfPorts
	}
	*taken = append(*taken, p)
	return p, nil
}

// interfaceName maps a direction value to a configured interface, or ""
// (the default) with a warning.
func (e *Engine) interfaceName(name string) string {
	e.mu.Lock()
	ifaces := e.cfg.Interfaces
	e.mu.Unlock()
	for _, i := range ifaces {
		if i.Name == name {
			return name
		}
	}
	if len(ifaces) > 0 {
		e.log.Warn("unknown interface in direction; using the default", "interface", name)
	}
	return ""
}

// interfaceAddr is the address to print for a media without sockets
// (rejected): that of any socket the party has, else unknown.
func (e *Engine) interfaceAddr(l *leg, family int) netip.Addr {
	for _, m := range l.medias {
		if m.local.RTP.IsValid() && familyOf(m.local.RTP.Addr()) == family {
			if m.local.Advertised.IsValid() {
				return m.local.Advertised
			}
			return m.local.RTP.Addr()
		}
	}
	if family == 6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func familyOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 4
	}
	return 6
}

// sameEndpoint compares endpoints; an all-zero address compares by port.
func sameEndpoint(a, b netip.AddrPort) bool {
	if a.Addr().IsUnspecified() || b.Addr().IsUnspecified() {
		return a.Port() == b.Port()
	}
	return a == b
}

// altSockets gives a party rtpkit is an ICE agent towards sockets on its
// interface's address of the other family too (its second host
// candidates, as rtpengine lists every address of the logical
// interface), and takes them back when ICE towards it ends or its media
// goes. Their shape follows the media's sockets (a single port when those
// are one).
func (e *Engine) altSockets(ctx context.Context, x *exchange, rm *media) error {
	other := 0
	if (rm.ice != nil || rm.icePass) && rm.local.RTP.IsValid() {
		other = 6
		if familyOf(rm.local.RTP.Addr()) == 6 {
			other = 4
		}
		if !e.hasFamily(rm.local.Interface, other) {
			other = 0
		}
	}
	if other == 0 {
		rm.alt = portdapi.Pair{}
		return nil
	}
	single := !rm.local.RTCP.IsValid()
	if rm.alt.RTP.IsValid() && familyOf(rm.alt.RTP.Addr()) == other && single == !rm.alt.RTCP.IsValid() {
		return nil
	}
	p, err := e.take(ctx, rm.local.Interface, other, single, x.taken)
	if err != nil {
		return err
	}
	rm.alt = p
	return nil
}

// hasFamily reports whether the logical interface (empty: the default,
// the first) has an address of the family.
func (e *Engine) hasFamily(iface string, family int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, ifc := range e.cfg.Interfaces {
		if ifc.Name == iface || iface == "" && i == 0 {
			return slices.Contains(ifc.Families, family)
		}
	}
	return false
}
