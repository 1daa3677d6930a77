package calls

// Transcoding's signalling, as rtpengine's codec transcode option: an
// offer gives the answerer the codecs named besides the offerer's (those
// the offerer lacks, after its main codecs, before telephone-event and
// CN); an answer that accepted none of the offerer's own codecs gives the
// offerer its first codec rtpkit transcodes, and rtp-fwd transcodes both
// ways (each party's record names the codec it is sent, Media.Transcode).
// An answer that kept an offerer's codec gives the offerer those it kept;
// if it also accepted an added codec, what the answerer sends in it is
// transcoded to the offerer's first kept codec.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rtpkit/rtpkit/pkg/codec/names"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/sdp"
)

// ErrTranscode refuses a transcoding request this build cannot carry out.
type ErrTranscode struct{ Codec string }

func (e *ErrTranscode) Error() string {
	if !names.Libraries {
		return fmt.Sprintf("Transcoding to %s is not supported: rtpkit was built without the codec libraries", e.Codec)
	}
	return fmt.Sprintf("Transcoding to %s is not supported", e.Codec)
}

// codecDefaults are the formats of the codecs rtpkit adds when a request
// names them without a clock rate or channel count: RFC 3551's static
// payload types, Opus as RFC 7587 writes it, telephone-event at 8 kHz.
var codecDefaults = map[string]struct {
	name          string
	pt            int // static payload type, -1: dynamic
	clock         int
	params, fmtp  string
	supplementary bool
}{
	"pcmu":            {"PCMU", 0, 8000, "", "", false},
	"pcma":            {"PCMA", 8, 8000, "", "", false},
	"g722":            {"G722", 9, 8000, "", "", false},
	"opus":            {"opus", -1, 48000, "2", "", false},
	"g729":            {"G729", 18, 8000, "", "", false},
	"gsm":             {"GSM", 3, 8000, "", "", false},
	"telephone-event": {"telephone-event", -1, 8000, "", "0-15", true},
	"cn":              {"CN", 13, 8000, "", "", true},
}

// checkTranscode refuses codecs this build does not transcode.
func checkTranscode(specs []string) error {
	for _, s := range specs {
		name := strings.Split(s, "/")[0]
		if strings.EqualFold(name, "telephone-event") || strings.EqualFold(name, "CN") {
			continue // supplemental: events passed or played as tones, CN passed or played as noise
		}
		if !names.Supported(name) {
			return &ErrTranscode{Codec: name}
		}
	}
	return nil
}

// addTranscodeCodecs adds to an offer's codecs those of specs it lacks.
func addTranscodeCodecs(list []sdp.PayloadType, specs []string) []sdp.PayloadType {
	if len(specs) == 0 {
		return list
	}
	used := map[int]bool{}
	for _, p := range list {
		used[p.PT] = true
	}
	var added []sdp.PayloadType
	for _, s := range specs {
		f := strings.Split(s, "/")
		d, ok := codecDefaults[strings.ToLower(f[0])]
		if !ok {
			continue // refused before (checkTranscode)
		}
		// The name as the request spells it ("pcma" stays), as rtpengine.
		p := sdp.PayloadType{Encoding: f[0], Clock: d.clock, Params: d.params, Fmtp: d.fmtp}
		if len(f) > 1 && f[1] != "" {
			if c, err := strconv.Atoi(f[1]); err == nil && c > 0 {
				p.Clock = c
			}
		}
		if len(f) > 2 && f[2] != "" {
			p.Params = f[2]
			if p.Params == "1" {
				p.Params = ""
			}
		}
		if len(f) > 5 && f[5] != "" {
			p.Fmtp = f[5]
		}
		if slices.ContainsFunc(list, func(q sdp.PayloadType) bool { return codecMatches(s, q) }) ||
			slices.ContainsFunc(added, func(q sdp.PayloadType) bool { return sameCodec(p, q) }) {
			continue
		}
		p.PT = d.pt
		if p.PT < 0 || used[p.PT] || p.Clock != d.clock {
			p.PT = -1
			for n := 96; n < 128; n++ {
				if !used[n] {
					p.PT = n
					break
				}
			}
			if p.PT < 0 {
				continue // no number left
			}
		}
		used[p.PT] = true
		p.RTPMap = p.Encoding + "/" + strconv.Itoa(p.Clock)
		if p.Params != "" {
			p.RTPMap += "/" + p.Params
		}
		added = append(added, p)
	}
	// A telephone-event offered goes with each new clock rate too
	// (rtpengine's DTMF for the added codecs' rate).
	if te := slices.IndexFunc(list, func(q sdp.PayloadType) bool { return strings.EqualFold(q.Encoding, "telephone-event") }); te >= 0 {
		has := func(clock int) bool {
			return slices.ContainsFunc(slices.Concat(list, added), func(q sdp.PayloadType) bool {
				return strings.EqualFold(q.Encoding, "telephone-event") && q.Clock == clock
			})
		}
		for _, p := range slices.Clone(added) {
			if supplemental(p) || has(p.Clock) {
				continue
			}
			n := -1
			for k := 96; k < 128; k++ {
				if !used[k] {
					n = k
					break
				}
			}
			if n < 0 {
				break
			}
			used[n] = true
			added = append(added, sdp.PayloadType{PT: n, Encoding: list[te].Encoding, Clock: p.Clock, Fmtp: "0-15",
				RTPMap: list[te].Encoding + "/" + strconv.Itoa(p.Clock)})
		}
	}
	// After the main codecs, before the supplemental ones that end the list.
	at := len(list)
	for at > 0 && supplemental(list[at-1]) {
		at--
	}
	var mains, rates, supps []sdp.PayloadType
	for _, p := range added {
		switch {
		case !supplemental(p):
			mains = append(mains, p)
		case p.Fmtp == "0-15" && slices.ContainsFunc(mains, func(m sdp.PayloadType) bool { return m.Clock == p.Clock }):
			rates = append(rates, p) // the telephone-event of an added rate
		default:
			supps = append(supps, p)
		}
	}
	out := slices.Concat(list[:at:at], mains, rates, list[at:], supps)
	return out
}

// sameCodec reports whether a and b are the same codec (name, clock,
// channels).
func sameCodec(a, b sdp.PayloadType) bool {
	ch := func(p string) string {
		if p == "" {
			return "1"
		}
		return p
	}
	return strings.EqualFold(a.Encoding, b.Encoding) && a.Clock == b.Clock && ch(a.Params) == ch(b.Params)
}

// transcodable reports whether rtpkit decodes and encodes p.
func transcodable(p nodestate.PayloadType) bool {
	return names.Supported(p.Encoding)
}

// planAnswerCodecs settles transcoding at an answer: answer are the
// answerer's codecs, offerer the offerer's; it returns the codecs the
// offerer is given, or nil to keep the plain rule (those of the answer
// the offerer offered), and the codec each party is sent by transcoding
// (nil: none).
//
// With inband (always-transcode, or telephone-event named for transcoding
// in the offer), an offerer with telephone-event answered by a party
// without it keeps its telephone-event, and its events reach the answerer
// as DTMF tones in the answerer's codec.
//
// answerWith (accept, consume) are offerer's payload types it is answered
// with, transcoded, when the answerer took none of them.
func planAnswerCodecs(answer []sdp.PayloadType, offerer []nodestate.PayloadType, inband bool, answerWith []uint8) (toOfferer []sdp.PayloadType, offererGets, answererGets *nodestate.PayloadType) {
	inOffer := func(p sdp.PayloadType) bool {
		return slices.ContainsFunc(offerer, func(o nodestate.PayloadType) bool { return int(o.PT) == p.PT })
	}
	isDTMF := func(p nodestate.PayloadType) bool { return strings.EqualFold(p.Encoding, "telephone-event") }
	answerDTMF := slices.ContainsFunc(answer, func(p sdp.PayloadType) bool { return strings.EqualFold(p.Encoding, "telephone-event") })
	offerDTMF := slices.IndexFunc(offerer, isDTMF)
	inband = inband && offerDTMF >= 0 && !answerDTMF
	var kept, added []sdp.PayloadType
	for _, p := range answer {
		if supplemental(p) {
			continue
		}
		if inOffer(p) {
			kept = append(kept, p)
		} else {
			added = append(added, p)
		}
	}
	if len(answerWith) > 0 && !slices.ContainsFunc(kept, func(p sdp.PayloadType) bool { return slices.Contains(answerWith, uint8(p.PT)) }) {
		var theirs *nodestate.PayloadType
		for _, p := range answer {
			if np := storePTs([]sdp.PayloadType{p})[0]; !supplemental(p) && transcodable(np) {
				theirs = &np
				break
			}
		}
		for _, o := range offerer {
			if slices.Contains(answerWith, o.PT) && !supplemental(offered(o)) && transcodable(o) {
				toOfferer = append(toOfferer, offered(o))
				if offererGets == nil {
					c := o
					offererGets = &c
				}
			}
		}
		if theirs != nil && offererGets != nil {
			for _, s := range offerer {
				if isDTMF(s) && answerDTMF {
					toOfferer = append(toOfferer, offered(s))
				}
			}
			return toOfferer, offererGets, theirs
		}
		toOfferer, offererGets = nil, nil
	}
	var addedCodec *nodestate.PayloadType
	for _, p := range added {
		if np := storePTs([]sdp.PayloadType{p})[0]; transcodable(np) {
			addedCodec = &np
			break
		}
	}
	answerCN := slices.ContainsFunc(answer, func(p sdp.PayloadType) bool { return strings.EqualFold(p.Encoding, "CN") })
	offerCN := slices.ContainsFunc(offerer, func(o nodestate.PayloadType) bool { return strings.EqualFold(o.Encoding, "CN") })
	if addedCodec == nil && (answerDTMF && offerDTMF < 0 || answerCN && !offerCN) {
		// telephone-event or CN added for the answerer (transcode
		// telephone-event, CN): the offerer's in-band digits become its
		// events and its events the offerer's tones; the offerer's
		// silence becomes CN and its CN the offerer's noise; both ways
		// through a transcoder in the codec they share.
		for _, p := range kept {
			if np := storePTs([]sdp.PayloadType{p})[0]; transcodable(np) {
				c := np
				return nil, &np, &c
			}
		}
		return nil, nil, nil
	}
	if addedCodec == nil && inband {
		// Only the events need converting: the answerer is sent its own
		// first codec, the offerer keeps its telephone-event.
		for _, p := range kept {
			if np := storePTs([]sdp.PayloadType{p})[0]; transcodable(np) {
				for _, q := range answer {
					if inOffer(q) {
						toOfferer = append(toOfferer, q)
					}
				}
				return append(toOfferer, offered(offerer[offerDTMF])), nil, &np
			}
		}
		return nil, nil, nil
	}
	if addedCodec == nil {
		return nil, nil, nil
	}
	if len(kept) > 0 {
		for _, p := range kept {
			if np := storePTs([]sdp.PayloadType{p})[0]; transcodable(np) {
				return nil, &np, nil
			}
		}
		return nil, nil, nil
	}
	for _, o := range offerer {
		if supplemental(offered(o)) || !transcodable(o) {
			continue
		}
		choice := o
		toOfferer = []sdp.PayloadType{offered(o)}
		// The offerer's telephone-event of the codec's rate goes with it
		// when the answer has telephone-event too, or its events are
		// played in-band.
		for _, s := range offerer {
			if isDTMF(s) && s.Clock == o.Clock && (answerDTMF || inband) {
				toOfferer = append(toOfferer, offered(s))
			}
		}
		return toOfferer, &choice, addedCodec
	}
	return nil, nil, nil
}

// repackTo settles, at an answer, the codec each repacketized party (or
// each party of a call set up for play DTMF) is sent when no transcoding
// chose one: the first codec of the answer both share (such a stream goes
// through a transcoder, which passes what needs no change).
func repackTo(offerer, answerer *media, answer []sdp.PayloadType) {
	for _, p := range answer {
		if supplemental(p) || !slices.ContainsFunc(offerer.pts, func(o nodestate.PayloadType) bool { return int(o.PT) == p.PT }) {
			continue
		}
		np := storePTs([]sdp.PayloadType{p})[0]
		if !transcodable(np) {
			return
		}
		// A party listened to for DTMF has what it sends transcoded:
		// its peer is sent through the transcoder.
		if (offerer.repack || offerer.injectDTMF || answerer.detectDTMF) && offerer.transcode == nil {
			offerer.transcode = &np
		}
		if (answerer.repack || answerer.injectDTMF || offerer.detectDTMF) && answerer.transcode == nil {
			c := np
			answerer.transcode = &c
		}
		return
	}
}

// answerWith lists the payload types of the offerer's codecs that accept
// or consume name.
func answerWith(pts []nodestate.PayloadType, o CodecOptions) []uint8 {
	var out []uint8
	for _, p := range pts {
		for _, spec := range slices.Concat(o.Accept, o.Consume) {
			if spec == "all" || spec == "full" || codecMatches(spec, offered(p)) {
				out = append(out, p.PT)
				break
			}
		}
	}
	return out
}

// withCodecSet applies the offer's codec set entries to the codec an
// offerer is sent by transcoding: an entry name/clock/channels/bitrate
// that matches it gives Opus's encoder that bitrate (as fmtp
// maxaveragebitrate, which only the encoder reads: the SDP is not
// changed). Other codecs have fixed rates.
func withCodecSet(pt *nodestate.PayloadType, set []string) *nodestate.PayloadType {
	if pt == nil || !strings.EqualFold(pt.Encoding, "opus") {
		return pt
	}
	for _, s := range set {
		f := strings.Split(s, "/")
		if len(f) < 4 || !codecMatches(strings.Join(f[:3], "/"), offered(*pt)) {
			continue
		}
		br, err := strconv.Atoi(f[3])
		if err != nil || br < 6000 || br > 510000 {
			continue
		}
		c := *pt
		if c.Fmtp != "" {
			c.Fmtp += ";"
		}
		c.Fmtp += "maxaveragebitrate=" + strconv.Itoa(br)
		return &c
	}
	return pt
}
