package codec

import "math"

// DTMF tones (ITU-T Q.23): each event code 0–15 is a pair of a low and a
// high frequency.
var (
	dtmfLow  = [4]float64{697, 770, 852, 941}
	dtmfHigh = [4]float64{1209, 1336, 1477, 1633}
	// dtmfKey places each event code (0–9, *, #, A–D) on the keypad.
	dtmfKey = [16][2]int{
		{3, 1}, {0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}, {2, 0}, {2, 1}, {2, 2},
		{3, 0}, {3, 2}, {0, 3}, {1, 3}, {2, 3}, {3, 3},
	}
)

// ToneGen makes the in-band tone of an RFC 4733 event: both frequencies
// at the event's volume (−dBm0 each, 3 dB under a full-scale sine at 0
// dBm0, as G.711's reference level), continuous in phase from one call of
// Fill to the next.
type ToneGen struct {
	rate  int
	event int
	amp   float64
	n     int // samples made so far
}

// NewToneGen returns a generator of event (0–15) at volume (0–63,
// −dBm0) for PCM at rate.
func NewToneGen(rate int, event, volume uint8) *ToneGen {
	if volume > 63 {
		volume = 63
	}
	// 0 dBm0 is 3.14 dB below a full-scale sine (G.711).
	amp := 32767 * math.Pow(10, (-3.14-float64(volume))/20)
	return &ToneGen{rate: rate, event: int(event & 15), amp: amp}
}

// Fill writes the next len(pcm) samples of the tone.
func (g *ToneGen) Fill(pcm []int16) {
	k := dtmfKey[g.event]
	lo, hi := dtmfLow[k[0]], dtmfHigh[k[1]]
	for i := range pcm {
		t := float64(g.n+i) / float64(g.rate)
		v := g.amp * (math.Sin(2*math.Pi*lo*t) + math.Sin(2*math.Pi*hi*t))
		pcm[i] = int16(max(-32768, min(32767, v)))
	}
	g.n += len(pcm)
}
