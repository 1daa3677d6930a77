package ngapi

import (
	"net/netip"

	"github.com/rtpkit/rtpkit/pkg/api"
)

// PlayDTMFEvent is where ng-ctl asks the node's rtp-fwd workers to inject
// a DTMF event into a party's media (ng's play DTMF):
// rtpkit.v1.<node>.ng-ctl.play-dtmf. The worker that holds the socket
// does it; the others ignore it.
var PlayDTMFEvent = api.Event[PlayDTMF]{Daemon: Daemon, Verb: "play-dtmf"}

// PlayDTMF is one DTMF event to inject: into what the party sending to
// rtpkit's socket Local (its RTP socket) sends, as an RFC 4733 event if
// the receiver takes telephone-event, else as the tone in its codec.
type PlayDTMF struct {
	Call  string         `json:"call"`
	Local netip.AddrPort `json:"local"`
	// Event is the event code (0–15); Duration in ms; Volume −dBm0.
	Event    uint8 `json:"event"`
	Duration int   `json:"duration"`
	Volume   uint8 `json:"volume"`
	// Pause is the time (ms) the party's audio passes after it before a
	// next queued event plays.
	Pause int `json:"pause,omitempty"`
}
