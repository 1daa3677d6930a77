package calls

// Codec manipulation that needs no media processing, as rtpengine's codec
// options: strip, offer and except. A stripped codec is left out of the
// SDP the receiver gets, as if the sender had never offered it; all
// (or full) strips every codec but those offer or except name; offer also
// moves the codecs it names to the front, in its order. Stripping every
// codec is an error rtpengine answers by leaving the list unchanged, and
// so does rtpkit. A supplemental codec (telephone-event, CN) whose clock
// rate had a main codec that stripping removed goes with it.

import (
	"slices"
	"strconv"
	"strings"

	"github.com/rtpkit/rtpkit/pkg/sdp"
)

// CodecOptions are a request's codec manipulations, each list in the
// order given (the codec dictionary's, then the codec-X-… flags').
type CodecOptions struct {
	Strip, Offer, Except []string
	// Mask hides codecs from the receiver of an offer as Strip does; the
	// offerer may still send them, transcoded (transcode.go).
	Mask []string
	// Transcode adds codecs to an offer that rtpkit transcodes to and
	// from (transcode.go).
	Transcode []string
	// Accept names offerer's codecs that the offerer is answered with
	// even if the answerer takes none of them (transcoded to the
	// answerer's); Consume does the same for codecs it also hides from
	// the answerer, as Mask (transcode.go).
	Accept, Consume []string
	// Set gives codecs' encoder options (the bitrate of
	// name/clock/channels/bitrate) for the offerer's codecs rtpkit
	// transcodes to (transcode.go).
	Set []string
}

// empty reports whether the options change nothing.
func (o CodecOptions) empty() bool {
	return len(o.Strip)+len(o.Offer)+len(o.Except)+len(o.Mask)+len(o.Consume) == 0
}

// codecMatches reports whether codec spec names p: a payload type number,
// or an encoding name (case-insensitive) with, optionally, the clock rate,
// the channel count and (sixth field) the fmtp that must match, as
// rtpengine's codec strings ("opus/48000/2", "iLBC/8000/1///mode=30").
func codecMatches(spec string, p sdp.PayloadType) bool {
	f := strings.Split(spec, "/")
	if n, err := strconv.Atoi(f[0]); err == nil {
		return n == p.PT
	}
	if !strings.EqualFold(f[0], p.Encoding) {
		return false
	}
	if len(f) > 1 && f[1] != "" && f[1] != strconv.Itoa(p.Clock) {
		return false
	}
	if len(f) > 2 && f[2] != "" {
		ch := p.Params
		if ch == "" {
			ch = "1"
		}
		if f[2] != ch {
			return false
		}
	}
	if len(f) > 5 && f[5] != "" && f[5] != p.Fmtp {
		return false
	}
	return true
}

// supplemental reports whether p is a codec that goes with a main codec
// of its clock rate (telephone-event, comfort noise).
func supplemental(p sdp.PayloadType) bool {
	return strings.EqualFold(p.Encoding, "telephone-event") || strings.EqualFold(p.Encoding, "CN")
}

// applyCodecOptions returns the codecs the receiver is given.
func applyCodecOptions(pts []sdp.PayloadType, o CodecOptions) []sdp.PayloadType {
	if o.empty() || len(pts) == 0 {
		return pts
	}
	all := slices.Contains(o.Strip, "all") || slices.Contains(o.Strip, "full") ||
		slices.Contains(o.Mask, "all") || slices.Contains(o.Mask, "full") ||
		slices.Contains(o.Consume, "all") || slices.Contains(o.Consume, "full")
	named := func(specs []string, p sdp.PayloadType) bool {
		return slices.ContainsFunc(specs, func(s string) bool { return s != "all" && s != "full" && codecMatches(s, p) })
	}
	kept := make([]sdp.PayloadType, 0, len(pts))
	for _, p := range pts {
		exempt := named(o.Offer, p) || named(o.Except, p)
		if (all || named(o.Strip, p) || named(o.Mask, p) || named(o.Consume, p)) && !exempt {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 && len(o.Transcode) == 0 && len(o.Consume) == 0 {
		return pts // nothing left to offer: unchanged, as rtpengine
	}
	// Supplemental codecs whose main codecs of their clock rate went.
	mainAt := func(list []sdp.PayloadType, clock int) bool {
		return slices.ContainsFunc(list, func(q sdp.PayloadType) bool { return !supplemental(q) && q.Clock == clock })
	}
	kept = slices.DeleteFunc(kept, func(p sdp.PayloadType) bool {
		return supplemental(p) && !named(o.Offer, p) && !named(o.Except, p) && mainAt(pts, p.Clock) && !mainAt(kept, p.Clock)
	})
	if len(o.Offer) > 0 {
		var front []sdp.PayloadType
		for _, s := range o.Offer {
			for _, p := range kept {
				if codecMatches(s, p) && !slices.ContainsFunc(front, func(q sdp.PayloadType) bool { return q.PT == p.PT }) {
					front = append(front, p)
				}
			}
		}
		rest := slices.DeleteFunc(slices.Clone(kept), func(p sdp.PayloadType) bool {
			return slices.ContainsFunc(front, func(q sdp.PayloadType) bool { return q.PT == p.PT })
		})
		kept = append(front, rest...)
	}
	return kept
}
