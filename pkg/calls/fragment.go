package calls

// Trickle ICE SDP fragments (RFC 8840: the bodies of SIP INFO requests
// that carry a party's candidates one by one), as rtpengine takes them:
// an offer with the fragment flag adds the candidates of its media to the
// party's (rtpkit's agent towards it checks them) and changes nothing
// else; its reply has no SDP. A fragment that overtakes the offer (no
// such call or party yet), or meets a party rtpkit is not an ICE agent
// towards yet, waits up to fragmentAge and is applied after the party's
// next offer or answer.

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/sdp"
)

const (
	// fragmentAge is how long a queued fragment waits (rtpengine's
	// MAX_FRAG_AGE is 3 s).
	fragmentAge = 3 * time.Second
	// maxQueuedFragments bounds the queue (fragments of calls that never
	// come).
	maxQueuedFragments = 1024
)

// queuedFragment is a fragment waiting for its call or party.
type queuedFragment struct {
	sessions []*sdp.Session
	at       time.Time
}

// fragmentKey names the party a fragment is for.
func fragmentKey(callID, tag string) string { return callID + "\x00" + tag }

// fragmentSessions parses a fragment's body: RFC 8840 bodies start at
// their session-level attributes or m= line, without v=, o=, s= or t=.
func fragmentSessions(body []byte) ([]*sdp.Session, error) {
	if !bytes.HasPrefix(body, []byte("v=")) {
		body = append([]byte("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"), body...)
	}
	var out []*sdp.Session
	for _, b := range sdp.Split(body) {
		s, err := sdp.Parse(b)
		if err != nil {
			return nil, ErrParseSDP
		}
		out = append(out, s)
	}
	return out, nil
}

// fragment handles an offer with the fragment flag.
func (e *Engine) fragment(req *Request) error {
	sessions, err := fragmentSessions(req.SDP)
	if err != nil {
		return err
	}
	en := e.lock(req.CallID)
	if en == nil {
		e.queueFragment(req, sessions)
		return nil
	}
	defer en.mu.Unlock()
	l := en.c.legByTag(req.FromTag)
	if l == nil || !e.applyFragment(en.c, l, sessions) {
		e.queueFragment(req, sessions)
	}
	return nil
}

// queueFragment keeps a fragment for later.
func (e *Engine) queueFragment(req *Request, sessions []*sdp.Session) {
	e.fragMu.Lock()
	defer e.fragMu.Unlock()
	now := e.now()
	if e.frags == nil {
		e.frags = map[string][]queuedFragment{}
	}
	if e.fragCount >= maxQueuedFragments {
		for k, q := range e.frags { // drop what is too old
			q = slices.DeleteFunc(q, func(f queuedFragment) bool { return now.Sub(f.at) > fragmentAge })
			e.fragCount -= len(e.frags[k]) - len(q)
			if len(q) == 0 {
				delete(e.frags, k)
			} else {
				e.frags[k] = q
			}
		}
		if e.fragCount >= maxQueuedFragments {
			e.log.Warn("trickle ICE fragment dropped: too many waiting", "call", req.CallID)
			return
		}
	}
	k := fragmentKey(req.CallID, req.FromTag)
	e.frags[k] = append(e.frags[k], queuedFragment{sessions: sessions, at: now})
	e.fragCount++
}

// dequeueFragments applies the waiting fragments of party l of call c
// (locked), after its offer or answer.
func (e *Engine) dequeueFragments(c *call, l *leg) {
	e.fragMu.Lock()
	k := fragmentKey(c.id, l.tag)
	q := e.frags[k]
	delete(e.frags, k)
	e.fragCount -= len(q)
	e.fragMu.Unlock()
	now := e.now()
	for _, f := range q {
		if now.Sub(f.at) <= fragmentAge {
			e.applyFragment(c, l, f.sessions)
		}
	}
}

// applyFragment adds a fragment's candidates to party l's media (matched
// by a=mid, else by position), where rtpkit is an ICE agent towards it
// and the fragment's ufrag, if any, is the party's. It reports false if
// a media of the fragment has no agent to take them (yet).
func (e *Engine) applyFragment(c *call, l *leg, sessions []*sdp.Session) bool {
	changed, ok := false, true
	i := 0
	for _, s := range sessions {
		for _, m := range s.Media() {
			lm := mediaForFragment(l, m, i)
			i++
			if lm == nil || lm.ice == nil {
				ok = false
				continue
			}
			if u, _ := m.ICECredentials(); u != "" && u != lm.ice.RemoteUfrag {
				continue // another generation of the party's credentials
			}
			c1, c2 := sdpCandidates(m)
			n1, n2 := mergeCandidates(lm.ice.Candidates, c1), mergeCandidates(lm.ice.RTCPCandidates, c2)
			if len(n1) != len(lm.ice.Candidates) || len(n2) != len(lm.ice.RTCPCandidates) {
				lm.ice.Candidates, lm.ice.RTCPCandidates, changed = n1, n2, true
			}
		}
	}
	if changed {
		e.save(c)
	}
	return ok
}

// mediaForFragment is party l's media that fragment media m (the i-th of
// the fragment) is about: the one with its a=mid, else the i-th.
func mediaForFragment(l *leg, m *sdp.Media, i int) *media {
	if mid := m.Mid(); mid != "" {
		for _, lm := range l.medias {
			if lm.mid == mid {
				return lm
			}
		}
	}
	if i < len(l.medias) {
		return l.medias[i]
	}
	return nil
}

// sdpCandidates are the UDP candidates of components 1 and 2 of an SDP
// media section (candidates by host name, such as mDNS ones, are left
// out: rtpkit resolves no names).
func sdpCandidates(m *sdp.Media) (rtp, rtcp []netip.AddrPort) {
	for _, v := range m.Attr("candidate") {
		f := strings.Fields(v)
		if len(f) < 6 || !strings.EqualFold(f[2], "udp") {
			continue
		}
		a, err := netip.ParseAddr(f[4])
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(f[5], 10, 16)
		if err != nil || port == 0 {
			continue
		}
		ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
		switch f[1] {
		case "1":
			rtp = mergeCandidates(rtp, []netip.AddrPort{ap})
		case "2":
			rtcp = mergeCandidates(rtcp, []netip.AddrPort{ap})
		}
	}
	return rtp, rtcp
}

// mergeCandidates adds the new candidates to have, without duplicates, up
// to nodestate.MaxICECandidates.
func mergeCandidates(have, add []netip.AddrPort) []netip.AddrPort {
	out := have
	for _, ap := range add {
		if len(out) >= nodestate.MaxICECandidates {
			break
		}
		if !slices.Contains(out, ap) {
			out = append(slices.Clip(out), ap)
		}
	}
	return out
}
