//go:build cgo && !notranscode

package codec

// Opus through libopus (gopkg.in/hraban/opus.v2). The RTP clock is always
// 48000 (RFC 7587); the codec runs at the PCM rate of the other side when
// libopus takes it (8, 12, 16, 24 or 48 kHz), so that no resampling is
// needed there. Encoder settings follow rtpengine's: 32 kbit/s for
// opus/48000/2 (24 kbit/s for a one-channel rtpmap; fmtp
// maxaveragebitrate overrides), in-band FEC
// with useinbandfec=1, DTX with usedtx=1, frames of the ptime (2.5 to 60
// ms). Stereo is decoded to mono, and mono sent as two equal channels to
// a party that asked for stereo.

import (
	"fmt"
	"strconv"

	"gopkg.in/hraban/opus.v2"
)

func init() {
	register("opus", factory{dec: newOpusDec, enc: newOpusEnc})
}

// opusRates are the PCM rates libopus works at.
var opusRates = []int{8000, 12000, 16000, 24000, 48000}

// OpusRate returns the libopus rate closest at or above want.
func OpusRate(want int) int {
	for _, r := range opusRates {
		if r >= want {
			return r
		}
	}
	return 48000
}

type opusDec struct {
	d    *opus.Decoder
	rate int
	tmp  []int16
}

func newOpusDec(f Format) (Decoder, error) { return newOpusDecAt(f, 48000) }

func newOpusDecAt(_ Format, rate int) (Decoder, error) {
	// Two channels: libopus mixes a mono stream into both.
	d, err := opus.NewDecoder(rate, 2)
	if err != nil {
		return nil, fmt.Errorf("opus decoder: %w", err)
	}
	return &opusDec{d: d, rate: rate, tmp: make([]int16, 2*rate*120/1000)}, nil
}

func (d *opusDec) Rate() int { return d.rate }

func (d *opusDec) Decode(pcm []int16, payload []byte) ([]int16, error) {
	n, err := d.d.Decode(payload, d.tmp)
	if err != nil {
		return pcm, fmt.Errorf("opus decode: %w", err)
	}
	for i := range n {
		pcm = append(pcm, int16((int32(d.tmp[2*i])+int32(d.tmp[2*i+1]))/2))
	}
	return pcm, nil
}

type opusEnc struct {
	e        *opus.Encoder
	rate     int
	frame    int
	channels int
	tmp      []int16
}

func newOpusEnc(f Format, ptime int) (Encoder, error) { return newOpusEncAt(f, ptime, 48000) }

func newOpusEncAt(f Format, ptime, rate int) (Encoder, error) {
	channels := 1
	if f.FmtpParam("stereo") == "1" {
		channels = 2
	}
	e, err := opus.NewEncoder(rate, channels, opus.AppAudio)
	if err != nil {
		return nil, fmt.Errorf("opus encoder: %w", err)
	}
	// rtpengine's default bitrate goes by the rtpmap's channel count,
	// which for Opus is always 2 (RFC 7587): 32 kbit/s.
	bitrate := 24000
	if channels == 2 || f.Channels == 2 {
		bitrate = 32000
	}
	if v, err := strconv.Atoi(f.FmtpParam("maxaveragebitrate")); err == nil && v >= 6000 && v <= 510000 {
		bitrate = v
	}
	if err := e.SetBitrate(bitrate); err != nil {
		return nil, fmt.Errorf("opus bitrate %d: %w", bitrate, err)
	}
	if f.FmtpParam("useinbandfec") == "1" {
		_ = e.SetInBandFEC(true)
	}
	if f.FmtpParam("usedtx") == "1" {
		_ = e.SetDTX(true)
	}
	switch {
	case ptime < 5:
		ptime = 5 // rtpengine's rounding to what Opus frames allow
	case ptime < 10:
		ptime = 5
	case ptime < 20:
		ptime = 10
	case ptime < 40:
		ptime = 20
	case ptime < 60:
		ptime = 40
	default:
		ptime = 60
	}
	frame := rate * ptime / 1000
	return &opusEnc{e: e, rate: rate, frame: frame, channels: channels, tmp: make([]int16, 2*frame)}, nil
}

func (e *opusEnc) Rate() int         { return e.rate }
func (e *opusEnc) FrameSamples() int { return e.frame }

func (e *opusEnc) Encode(out []byte, pcm []int16) ([]byte, error) {
	in := pcm
	if e.channels == 2 {
		for i, s := range pcm {
			e.tmp[2*i], e.tmp[2*i+1] = s, s
		}
		in = e.tmp[:2*len(pcm)]
	}
	n0 := len(out)
	out = growBytes(out, 1500)
	n, err := e.e.Encode(in, out[n0:])
	if err != nil {
		return out[:n0], fmt.Errorf("opus encode: %w", err)
	}
	return out[:n0+n], nil
}
