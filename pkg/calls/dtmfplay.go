package calls

import (
	"net/netip"
	"strings"
)

// ErrNoInjection refuses play DTMF on a call not set up for it.
var ErrNoInjection = &Reasoned{"Call not set up for DTMF injection (the inject-DTMF flag in offer and answer, or transcoding)"}

// DTMFTargets returns, for play DTMF, the RTP sockets at which rtpkit
// receives the audio of the party with req's from-tag (all parties with
// all): the DTMF is played into what that party sends. Each must reach
// its peer through a transcoder (inject-DTMF, transcoding,
// always-transcode).
func (e *Engine) DTMFTargets(req *Request, all bool) ([]netip.AddrPort, error) {
	if req.CallID == "" {
		return nil, ErrNoCallID
	}
	en := e.lock(req.CallID)
	if en == nil {
		return nil, ErrUnknownCall
	}
	defer en.mu.Unlock()
	c := en.c
	var legs []*leg
	switch {
	case all:
		legs = c.legs
	case req.FromTag != "":
		l := c.legByTag(req.FromTag)
		if l == nil {
			return nil, ErrDeleteNotFound
		}
		legs = append(legs, l)
	default:
		return nil, ErrNoFromTag
	}
	var out []netip.AddrPort
	for _, l := range legs {
		if l.peer == nil {
			continue
		}
		for i, m := range l.medias {
			if !strings.EqualFold(m.typ, "audio") || !m.local.RTP.IsValid() || i >= len(l.peer.medias) {
				continue
			}
			if l.peer.medias[i].transcode == nil {
				return nil, ErrNoInjection
			}
			out = append(out, m.local.RTP)
		}
	}
	if len(out) == 0 {
		return nil, ErrNoInjection
	}
	return out, nil
}
