package ngctl

import (
	"strconv"
	"strings"

	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/calls"
)

// playDTMF carries out play DTMF: the code (or digit) checked, duration
// (100–5000 ms, default 250), volume (dB, positive read as negative,
// default −8) and pause (100–5000 ms, default 100) as rtpengine reads
// them; the workers are asked on the bus to play the event into what the
// selected party sends (ngapi.PlayDTMFEvent).
func (p *protocol) playDTMF(v bencode.Value, req *calls.Request) bencode.Value {
	code, valid := dtmfCode(v)
	if !valid {
		return errorReply("Invalid or missing DTMF code")
	}
	num := func(key string, def, lo, hi int) int {
		x, found := v.Get(key)
		if !found {
			return def
		}
		n, isInt := x.Int()
		if !isInt {
			s, sok := x.String()
			if !sok {
				return def
			}
			i, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return def
			}
			n = int64(i)
		}
		return max(lo, min(hi, int(n)))
	}
	duration := num("duration", 250, 100, 5000)
	volume := num("volume", -8, -63, 63)
	if volume < 0 {
		volume = -volume
	}
	pause := num("pause", 100, 100, 5000)
	targets, err := p.engine.DTMFTargets(req, req.Flags["all"])
	if err != nil {
		return errorReply(calls.Reason(err))
	}
	if p.publishDTMF == nil {
		return errorReply("DTMF injection is not available: no forwarding workers on the bus")
	}
	for _, local := range targets {
		if err := p.publishDTMF(ngapi.PlayDTMF{Call: req.CallID, Local: local, Event: code, Duration: duration, Volume: uint8(volume), Pause: pause}); err != nil {
			p.log.Warn("play DTMF not sent to the workers", "call", req.CallID, "err", err)
			return errorReply("Failed to ask the forwarding workers to play DTMF")
		}
	}
	return ok(bencode.DictCap(1))
}

// dtmfCode reads code (or digit): 0–15, or one of 0–9 * # A–D.
func dtmfCode(v bencode.Value) (uint8, bool) {
	for _, key := range []string{"code", "digit"} {
		x, ok := v.Get(key)
		if !ok {
			continue
		}
		if n, ok := x.Int(); ok {
			return uint8(n), n >= 0 && n <= 15
		}
		s, ok := x.String()
		if !ok || len(s) != 1 {
			return 0, false
		}
		i := strings.IndexByte("0123456789*#ABCD", strings.ToUpper(s)[0])
		return uint8(i), i >= 0
	}
	return 0, false
}
