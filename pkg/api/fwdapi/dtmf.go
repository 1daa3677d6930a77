package fwdapi

import (
	"net/netip"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
)

// DTMFEvent is where workers publish the DTMF events parties send
// (rtpkit.v1.<node>.rtp-fwd.dtmf), one message per event when it ends;
// `rtpctl dtmf --follow` prints them.
var DTMFEvent = api.Event[DTMF]{Daemon: Daemon, Verb: "dtmf"}

// DTMF is one RFC 4733 event a party sent, with the fields rtpengine's
// DTMF log carries (dtmf-log-dest).
type DTMF struct {
	Worker string `json:"worker"`
	CallID string `json:"callid"`
	// SourceTag and SourceLabel are the sending party's tag and label;
	// Tags are the tags of the call's parties.
	SourceTag   string   `json:"source_tag"`
	SourceLabel string   `json:"source_label,omitempty"`
	Tags        []string `json:"tags"`
	// Time is when the event ended (its first end packet arrived).
	Time time.Time `json:"time"`
	// Source is the party's address (the packet's source).
	Source netip.AddrPort `json:"source"`
	// Event is the event code (0–9, 10 '*', 11 '#', 12–15 A–D), Digit
	// its character.
	Event uint8  `json:"event"`
	Digit string `json:"digit"`
	// Duration is the event's length in ms, Volume its volume (−dBm0).
	Duration int   `json:"duration"`
	Volume   uint8 `json:"volume"`
	// Local is rtpkit's socket the event arrived on.
	Local netip.AddrPort `json:"local"`
}

// DigitOf is the character of event code ev ("" for codes above 15).
func DigitOf(ev uint8) string {
	const digits = "0123456789*#ABCD"
	if int(ev) < len(digits) {
		return digits[ev : ev+1]
	}
	return ""
}
