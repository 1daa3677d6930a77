// Package codec is rtpkit's media processing for transcoding: audio
// decoders and encoders behind one interface (G.711 in Go, G.722 and DTMF
// tones through spandsp, Opus through libopus, resampling through
// speexdsp), and the Transcoder that turns one party's RTP into the
// other's codec, rewriting timestamps, sequence numbers and SSRC.
//
// The codecs that need C libraries are built with cgo and without the
// notranscode build tag; a build without them (CGO_ENABLED=0, or
// -tags notranscode) carries G.711 and telephone-event only, and
// Supported says so (pkg/codec/names gives the same answer to packages
// that must not link the C libraries).
package codec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rtpkit/rtpkit/pkg/codec/names"
)

// Format is an RTP payload format as SDP describes it.
type Format struct {
	// Name is the encoding name as written in a=rtpmap (any case).
	Name string
	// Clock is the RTP clock rate, Channels the channel count (0: 1).
	Clock, Channels int
	// Fmtp is the a=fmtp value.
	Fmtp string
}

// String is the rtpmap form name/clock[/channels].
func (f Format) String() string {
	s := f.Name + "/" + strconv.Itoa(f.Clock)
	if f.Channels > 1 {
		s += "/" + strconv.Itoa(f.Channels)
	}
	return s
}

// Is reports whether f is encoding name (case-insensitive).
func (f Format) Is(name string) bool { return strings.EqualFold(f.Name, name) }

// FmtpParam returns the value of fmtp parameter key ("" if absent).
func (f Format) FmtpParam(key string) string {
	for p := range strings.SplitSeq(f.Fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Decoder turns payloads of one format into mono 16-bit PCM at its Rate.
type Decoder interface {
	// Rate is the sampling rate of the PCM it gives.
	Rate() int
	// Decode appends the samples of payload to pcm.
	Decode(pcm []int16, payload []byte) ([]int16, error)
}

// Encoder turns mono 16-bit PCM at its Rate into payloads of one format,
// one frame of FrameSamples at a time.
type Encoder interface {
	Rate() int
	// FrameSamples is the number of samples of one packet's frame.
	FrameSamples() int
	// Encode appends the payload of one frame (len(pcm) == FrameSamples)
	// to out.
	Encode(out []byte, pcm []int16) ([]byte, error)
}

// ErrUnsupported is returned for a format this build cannot process.
var ErrUnsupported = errors.New("codec not supported by this build")

// Supported reports whether this build can decode and encode the format
// named (telephone-event and CN are not audio codecs and are not).
func Supported(name string) bool { return names.Supported(name) }

type factory struct {
	dec func(Format) (Decoder, error)
	enc func(Format, int) (Encoder, error)
}

var factories = map[string]factory{}

// register adds a codec's constructors; name is lower case.
func register(name string, f factory) { factories[name] = f }

// NewDecoder returns a decoder for f.
func NewDecoder(f Format) (Decoder, error) {
	fc, ok := factories[strings.ToLower(f.Name)]
	if !ok {
		return nil, fmt.Errorf("decoder %s: %w", f, ErrUnsupported)
	}
	return fc.dec(f)
}

// NewEncoder returns an encoder for f with packets of ptime ms (0: 20).
func NewEncoder(f Format, ptime int) (Encoder, error) {
	fc, ok := factories[strings.ToLower(f.Name)]
	if !ok {
		return nil, fmt.Errorf("encoder %s: %w", f, ErrUnsupported)
	}
	if ptime <= 0 {
		ptime = 20
	}
	return fc.enc(f, ptime)
}
