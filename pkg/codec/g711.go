package codec

import "github.com/zaf/g711"

// G.711 (PCMU, PCMA), one byte per sample at 8 kHz, in Go through
// github.com/zaf/g711. The tests check it against spandsp's G.711 for
// every input: decoding (both laws) and A-law encoding are bit-exact;
// µ-law encoding of 127 negative inputs rounds one code step apart
// (spandsp biases negative values by one), so a build with the codec
// libraries encodes µ-law with spandsp's (ulawEncode), and a build
// without them with zaf's.

// ulawEncode encodes one µ-law sample.
var ulawEncode = g711.EncodeUlawFrame

func init() {
	register("pcmu", factory{
		dec: func(Format) (Decoder, error) { return g711Dec{ulaw: true}, nil },
		enc: func(_ Format, ptime int) (Encoder, error) { return g711Enc{ulaw: true, frame: 8 * ptime}, nil },
	})
	register("pcma", factory{
		dec: func(Format) (Decoder, error) { return g711Dec{}, nil },
		enc: func(_ Format, ptime int) (Encoder, error) { return g711Enc{frame: 8 * ptime}, nil },
	})
}

type g711Dec struct{ ulaw bool }

func (g711Dec) Rate() int { return 8000 }

func (d g711Dec) Decode(pcm []int16, payload []byte) ([]int16, error) {
	for _, b := range payload {
		if d.ulaw {
			pcm = append(pcm, g711.DecodeUlawFrame(b))
		} else {
			pcm = append(pcm, g711.DecodeAlawFrame(b))
		}
	}
	return pcm, nil
}

type g711Enc struct {
	ulaw  bool
	frame int
}

func (g711Enc) Rate() int           { return 8000 }
func (e g711Enc) FrameSamples() int { return e.frame }

func (e g711Enc) Encode(out []byte, pcm []int16) ([]byte, error) {
	for _, s := range pcm {
		if e.ulaw {
			out = append(out, ulawEncode(s))
		} else {
			out = append(out, g711.EncodeAlawFrame(s))
		}
	}
	return out, nil
}
