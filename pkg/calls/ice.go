package calls

// ICE as rtpengine 10.5 terminates it (its call.c __ice_offer and the SDP
// it writes): with ICE=force, or by default when the sender's SDP speaks
// ICE, rtpkit is an ICE agent towards a party: the party's ICE lines are
// removed and rtpkit's own (a=ice-ufrag, a=ice-pwd, a=candidate per
// component) written for it. The agent's credentials, the party's and
// the role live in the media (and so in the call record); rtp-fwd answers
// and sends the checks (pkg/fwd, ice.go). rtpkit is the controlling agent
// towards a party it sent the offer to (RFC 8445 §6.1.1), the controlled
// one towards a party that offered.
//
// rtpkit's candidates are its sockets of the media: the media's local
// address and, on an interface with both families, sockets on its
// address of the other family (media.alt), as rtpengine lists the
// addresses of the logical interface.

import (
	"crypto/rand"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/sdp"
)

// iceChars are the characters of ICE user fragments and passwords
// (ice-char, RFC 8839 §5.4, without '+' and '/': rtpengine's are
// alphanumeric).
const iceChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomICE returns n random ice-chars from r (nil: crypto/rand).
func randomICE(r io.Reader, n int) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("ICE credentials: %w", err)
	}
	for i := range b {
		b[i] = iceChars[int(b[i])%len(iceChars)]
	}
	return string(b), nil
}

// iceSender applies the sender's ICE to its media: with ICE in its SDP
// rtpkit is an agent towards it too (the answer to an offerer that used
// ICE carries rtpkit's ICE lines), with the sender's credentials; without,
// there is none towards it. The request's ICE option is about the
// receiver (rtpengine's __ice_offer), not the sender.
func (x *exchange) iceSender(sm *media, m *sdp.Media, r io.Reader) error {
	ufrag, pwd := m.ICECredentials()
	if !m.IsRTP() || ufrag == "" || pwd == "" {
		sm.ice = nil
		return nil
	}
	if sm.ice == nil || sm.ice.RemoteUfrag != "" && sm.ice.RemoteUfrag != ufrag {
		// New, or an ICE restart by the party: new credentials of ours.
		ice, err := newICE(r, !x.offer || m.ICELite())
		if err != nil {
			return err
		}
		sm.ice = ice
	}
	if sm.ice.RemoteUfrag != ufrag || sm.ice.RemotePwd != pwd {
		sm.ice.Selected = netip.AddrPort{} // a restart: a new pair to find
	}
	sm.ice.RemoteUfrag, sm.ice.RemotePwd = ufrag, pwd
	sm.ice.Trickle = m.TrickleICE()
	sm.ice.Candidates, sm.ice.RTCPCandidates = sdpCandidates(m)
	return nil
}

// iceReceiver decides whether the receiver gets ICE from rtpkit: not with
// ICE=remove; with ICE=force; by default when the sender speaks ICE and
// the receiver has not signalled yet (rtpengine copies the sender's ICE
// only then; afterwards each party keeps what its own SDP set), or when
// rtpkit already is an agent towards it.
//
// ICE passes through instead (rtpengine's PASSTHRU: no agent, the sender's
// ICE lines go to the receiver with rtpkit's candidates added) when both
// speak ICE and ICE=optional asked for it, or the passthrough flag; it
// stays for later messages unless ICE=force or no-passthrough ends it,
// and ends when the sender stops speaking ICE. ICE=optional is ICE=force
// in an offer whose sender does not speak ICE. reject-ICE: no ICE towards
// the sender.
func (x *exchange) iceReceiver(sm, rm *media, m *sdp.Media, r io.Reader) error {
	mode := x.req.ICE
	if x.req.flag("reject-ICE") {
		sm.ice = nil
	}
	if x.req.flag("no-passthrough") || mode == "force" || mode == "remove" || !m.IsRTP() || !m.HasICE() {
		if sm.icePass && !m.HasICE() {
			rm.ice = nil // the party that had ICE passed to it has none now
		}
		sm.icePass, rm.icePass = false, false
	} else if mode == "optional" || x.req.flag("passthrough") || sm.icePass {
		sm.icePass, rm.icePass = true, true
		sm.ice, rm.ice = nil, nil
		return nil
	}
	switch {
	case mode == "remove" || !m.IsRTP():
		rm.ice = nil
		return nil
	case rm.ice != nil:
		return nil
	case mode == "force" || mode == "optional" && x.offer || m.HasICE() && !x.receiver.sdp:
		ice, err := newICE(r, x.offer)
		if err != nil {
			return err
		}
		rm.ice = ice
	}
	if rm.ice != nil && x.offer && x.req.flag("trickle-ICE") {
		rm.ice.Trickle = true
	}
	return nil
}

// iceLiteSession reports whether the SDP for the receiver says a=ice-lite:
// its first media has rtpkit's ICE as a lite agent.
func iceLiteSession(receiver *leg) bool {
	return len(receiver.medias) > 0 && receiver.medias[0].ice != nil && receiver.medias[0].ice.Lite
}

// newICE makes an agent's credentials (8- and 26-character, as rtpengine).
func newICE(r io.Reader, controlling bool) (*nodestate.ICE, error) {
	u, err := randomICE(r, 8)
	if err != nil {
		return nil, err
	}
	p, err := randomICE(r, 26)
	if err != nil {
		return nil, err
	}
	return &nodestate.ICE{Ufrag: u, Pwd: p, Controlling: controlling}, nil
}

// iceAttrs are the ICE lines the receiver gets: our credentials and a
// host candidate per component (RTCP's only without rtcp-mux) and local
// address: the media plan's first (local preference 65535), then the
// address of the other family (65534), as rtpengine orders the addresses
// of a logical interface with the media's family first.
//
// A media-address option is every candidate's address (as rtpengine
// writes them).
func iceAttrs(rm *media, mp *sdp.MediaPlan, m *sdp.Media, mediaAddr netip.Addr) []string {
	alt := rm.alt.Advertised
	if !alt.IsValid() {
		alt = rm.alt.RTP.Addr()
	}
	if mediaAddr.IsValid() {
		alt = mediaAddr
	}
	if rm.icePass && mp.Port != 0 && mp.Addr.IsValid() {
		mp.KeepICE = true
		return passthroughCandidates(rm, mp, m, alt)
	}
	if rm.ice == nil || mp.Port == 0 || !mp.Addr.IsValid() {
		return nil
	}
	out := []string{"ice-ufrag:" + rm.ice.Ufrag, "ice-pwd:" + rm.ice.Pwd}
	if rm.ice.Trickle {
		out = append(out, "ice-options:trickle")
		mp.EndOfCandidates = true
	}
	out = append(out, candidate(foundation(mp.Addr), 1, 0, mp.Addr, mp.Port))
	if rm.alt.RTP.IsValid() {
		out = append(out, candidate(foundation(alt), 1, 1, alt, int(rm.alt.RTP.Port())))
	}
	if mp.RTCPPort != 0 && !mp.RTCPMux {
		out = append(out, candidate(foundation(mp.Addr), 2, 0, mp.Addr, mp.RTCPPort))
		if rm.alt.RTCP.IsValid() {
			out = append(out, candidate(foundation(alt), 2, 1, alt, int(rm.alt.RTCP.Port())))
		}
	}
	return out
}

// candidate is one host candidate line (after "a="): priority with type
// preference 126 and local preference 65535 less the address's place
// (rtpengine's unique id of the local address).
func candidate(foundation string, component, place int, addr netip.Addr, port int) string {
	prio := 126<<24 | (65535-place)<<8 | (256 - component)
	return fmt.Sprintf("candidate:%s %d UDP %d %s %d typ host", foundation, component, prio, addr.Unmap(), port)
}

// foundation is the candidate foundation of a local address: 16
// alphanumerics, the same for the address on every node and after
// restarts (a hash of it).
func foundation(a netip.Addr) string {
	h := fnv.New64a()
	_, _ = h.Write(a.Unmap().AsSlice())
	v := h.Sum64()
	b := make([]byte, 16)
	for i := range b {
		b[i] = iceChars[v%uint64(len(iceChars))]
		v = v/uint64(len(iceChars)) ^ uint64(i+1)*0x9e3779b97f4a7c15
	}
	return string(b)
}

// iceLite applies the ICE-lite option of an offer (rtpengine's
// __ice_offer): rtpkit is an ICE-lite agent towards the receiver
// (forward), the sender (backward), both, or neither (off); absent, each
// party keeps what it had. A lite agent sends no checks and is controlled.
func (x *exchange) iceLite(sm, rm *media) {
	if !x.offer {
		return
	}
	set := func(m *media, lite bool) {
		if m.ice == nil {
			return
		}
		m.ice.Lite = lite
		if lite {
			m.ice.Controlling = false
		}
	}
	switch x.req.ICELite {
	case "forward":
		set(rm, true)
		set(sm, false)
	case "backward":
		set(sm, true)
		set(rm, false)
	case "both":
		set(sm, true)
		set(rm, true)
	case "off":
		set(sm, false)
		set(rm, false)
	}
}

// passthroughCandidates are rtpkit's candidates added to the sender's
// under ICE passthrough, with priorities below the sender's host
// candidates as rtpengine's new_priority makes them: type preference and
// local preference from the sender's lowest-priority host candidate of
// component 1 (one less; or, at local preference 0, the type preference
// one less and local preference 65535), and the local preference counted
// up per address in 32-bit arithmetic as rtpengine does (its second
// address wraps to 4294967295).
func passthroughCandidates(rm *media, mp *sdp.MediaPlan, m *sdp.Media, alt netip.Addr) []string {
	tpref, lpref := uint32(126), uint32(0)
	prio := icePriority(tpref, lpref, 1)
	for _, v := range m.Attr("candidate") {
		f := strings.Fields(v)
		if len(f) < 8 || f[1] != "1" || f[6] != "typ" || f[7] != "host" {
			continue
		}
		p, err := strconv.ParseUint(f[3], 10, 32)
		if err != nil || uint32(p) > prio {
			continue
		}
		tpref = uint32(p) >> 24
		lpref = 65535 - (uint32(p)&0xffff00)>>8
		if lpref != 0 {
			lpref--
		} else {
			if tpref != 0 {
				tpref--
			}
			lpref = 65535
		}
		prio = icePriority(tpref, lpref, 1)
	}
	type cand struct {
		addr netip.Addr
		port int
	}
	var out []string
	for _, comp := range []int{1, 2} {
		cands := []cand{{mp.Addr, mp.Port}}
		if comp == 1 && rm.alt.RTP.IsValid() {
			cands = append(cands, cand{alt, int(rm.alt.RTP.Port())})
		}
		if comp == 2 {
			if mp.RTCPPort == 0 || mp.RTCPMux {
				break
			}
			cands = []cand{{mp.Addr, mp.RTCPPort}}
			if rm.alt.RTCP.IsValid() {
				cands = append(cands, cand{alt, int(rm.alt.RTCP.Port())})
			}
		}
		for i, c := range cands {
			out = append(out, fmt.Sprintf("candidate:%s %d UDP %d %s %d typ host", foundation(c.addr), comp,
				icePriority(tpref, lpref+uint32(i), comp), c.addr.Unmap(), c.port))
		}
	}
	return out
}

// icePriority is RFC 8445's candidate priority from a type preference, a
// local preference counted as rtpengine counts it (0 the highest) and a
// component, in rtpengine's 32-bit arithmetic.
func icePriority(tpref, lpref uint32, component int) uint32 {
	return tpref<<24 | (65535-lpref)<<8 | uint32(256-component)
}
