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
	var out []netip.AddrPort
	err := e.withParties(req, all, func(_ *call, legs []*leg) error {
		for _, l := range legs {
			if l.peer == nil {
				continue
			}
			for i, m := range l.medias {
				if !strings.EqualFold(m.typ, "audio") || !m.local.RTP.IsValid() || i >= len(l.peer.medias) {
					continue
				}
				if l.peer.medias[i].transcode == nil {
					return ErrNoInjection
				}
				out = append(out, m.local.RTP)
			}
		}
		return nil
	})
	if err == nil && len(out) == 0 {
		err = ErrNoInjection
	}
	return out, err
}
