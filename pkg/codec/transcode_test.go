package codec

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/zaf/g711"
)

// rtpPacket builds an RTP packet.
func rtpPacket(pt uint8, seq uint16, ts, ssrc uint32, payload []byte) []byte {
	p := make([]byte, 12, 12+len(payload))
	p[0], p[1] = 0x80, pt
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	return append(p, payload...)
}

// sweep is a 300–3400 Hz sweep at 8 kHz, -6 dBFS, n samples.
func sweep(n, rate int) []int16 {
	out := make([]int16, n)
	phase := 0.0
	for i := range out {
		f := 300 + 3100*float64(i)/float64(n)
		phase += 2 * math.Pi * f / float64(rate)
		out[i] = int16(16000 * math.Sin(phase))
	}
	return out
}

// snr is the signal-to-noise ratio of got against ref in dB, at the
// delay (0..maxDelay samples) that gives the best.
func snr(ref, got []int16, maxDelay int) (float64, int) {
	best, at := math.Inf(-1), 0
	for d := 0; d <= maxDelay; d++ {
		var sig, noise float64
		for i := 2000; i+d < len(got) && i < len(ref)-2000; i++ {
			r, g := float64(ref[i]), float64(got[i+d])
			sig += r * r
			noise += (r - g) * (r - g)
		}
		if v := 10 * math.Log10(sig/noise); v > best {
			best, at = v, d
		}
	}
	return best, at
}

// run pushes pcm as 20 ms packets of in through a transcoder to out and
// returns the packets it made.
func run(t *testing.T, spec Spec, payloads [][]byte, inClock int) [][]byte {
	t.Helper()
	tc, err := NewTranscoder(spec)
	if err != nil {
		t.Fatal(err)
	}
	var outs [][]byte
	for i, p := range payloads {
		tc.Process(rtpPacket(spec.In[0].PT, uint16(1000+i), uint32(3000+i*inClock/50), 0x1234, p), func(b []byte) {
			outs = append(outs, append([]byte(nil), b...))
		})
	}
	return outs
}

func TestPCMAToPCMU(t *testing.T) {
	// No ptime: the default, 20 ms.
	spec := Spec{In: []PT{{8, Format{Name: "PCMA", Clock: 8000}}}, Out: PT{0, Format{Name: "PCMU", Clock: 8000}}}
	payload := make([]byte, 160)
	outs := run(t, spec, [][]byte{payload, payload}, 8000)
	if len(outs) != 2 {
		t.Fatalf("%d packets out, want 2", len(outs))
	}
	for i, o := range outs {
		if o[1]&0x7f != 0 || binary.BigEndian.Uint16(o[2:]) != uint16(1000+i) || binary.BigEndian.Uint32(o[4:]) != uint32(3000+160*i) ||
			binary.BigEndian.Uint32(o[8:]) != SSRC(0x1234) || len(o) != 172 {
			t.Fatalf("packet %d: header % x", i, o[:12])
		}
		for _, b := range o[12:] {
			if b != ')' { // rtpengine's daemon tests: PCMA 0x00 is PCMU 0x29
				t.Fatalf("payload %#x, want 0x29", b)
			}
		}
	}
}

// roundTrip sends a sweep as PCMU through codec mid and back to PCMU and
// returns the SNR against the sweep as PCMU alone gives it.
func roundTrip(t *testing.T, mid PT, midPtime int) float64 {
	ref := sweep(8000*4, 8000)
	var payloads [][]byte
	for i := 0; i+160 <= len(ref); i += 160 {
		p := make([]byte, 160)
		for j := range p {
			p[j] = ulawEncode(ref[i+j])
		}
		payloads = append(payloads, p)
	}
	pcmu := PT{0, Format{Name: "PCMU", Clock: 8000}}
	there := run(t, Spec{In: []PT{pcmu}, Out: mid, Ptime: midPtime}, payloads, 8000)
	var midPayloads [][]byte
	for _, p := range there {
		if p[1]&0x7f != mid.PT {
			t.Fatalf("PT %d out, want %d", p[1]&0x7f, mid.PT)
		}
		midPayloads = append(midPayloads, p[12:])
	}
	back := run(t, Spec{In: []PT{mid}, Out: pcmu}, midPayloads, mid.Clock*midPtime/20)
	var got []int16
	for _, p := range back {
		for _, b := range p[12:] {
			got = append(got, g711.DecodeUlawFrame(b))
		}
	}
	v, d := snr(ref, got, 800)
	t.Logf("PCMU → %s → PCMU: %d packets there, %d back, SNR %.2f dB at a delay of %d samples", mid.Format, len(there), len(back), v, d)
	return v
}

func TestRoundTripG711(t *testing.T) {
	if v := roundTrip(t, PT{8, Format{Name: "PCMA", Clock: 8000}}, 20); v < 30 {
		t.Fatalf("SNR %.1f dB", v)
	}
}

// TestRepacketize: 50 ms PCMU packets become 30 ms ones, as rtpengine's
// daemon tests want them: sequence numbers from the first input's on, one
// per packet out, timestamps contiguous, a jump in the input's ignored.
func TestRepacketize(t *testing.T) {
	pcmu := PT{0, Format{Name: "PCMU", Clock: 8000}}
	tc, err := NewTranscoder(Spec{In: []PT{pcmu}, Out: pcmu, Ptime: 30})
	if err != nil {
		t.Fatal(err)
	}
	type out struct {
		seq uint16
		ts  uint32
		n   int
	}
	var got []out
	emit := func(b []byte) {
		got = append(got, out{binary.BigEndian.Uint16(b[2:4]), binary.BigEndian.Uint32(b[4:8]), len(b) - 12})
	}
	tc.Process(rtpPacket(0, 1000, 3000, 1, make([]byte, 400)), emit)
	tc.Process(rtpPacket(0, 1001, 3400, 1, make([]byte, 400)), emit)
	tc.Process(rtpPacket(0, 1002, 3800, 1, make([]byte, 160)), emit)
	tc.Process(rtpPacket(0, 1003, 500000, 1, make([]byte, 480)), emit) // a timestamp reset
	want := []out{{1000, 3000, 240}, {1001, 3240, 240}, {1002, 3480, 240}, {1003, 3720, 240}, {1004, 3960, 240}, {1005, 4200, 240}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("packet %d: %v, want %v", i, got[i], want[i])
		}
	}
}

// TestComfortNoise: CN from a sender becomes a frame of noise at its level
// for a receiver without CN; a silent sender's frames become CN packets
// for a receiver with CN.
func TestComfortNoise(t *testing.T) {
	pcmu := PT{0, Format{Name: "PCMU", Clock: 8000}}
	cn := PT{13, Format{Name: "CN", Clock: 8000}}
	tc, err := NewTranscoder(Spec{In: []PT{pcmu, cn}, Out: pcmu, Pass: []uint8{0}, CNNoise: true})
	if err != nil {
		t.Fatal(err)
	}
	var outs [][]byte
	emit := func(b []byte) { outs = append(outs, append([]byte(nil), b...)) }
	tc.Process(rtpPacket(13, 1, 160, 9, []byte{40}), emit)
	if len(outs) != 1 || outs[0][1]&0x7f != 0 || len(outs[0]) != 172 {
		t.Fatalf("CN → %d packets", len(outs))
	}
	dec, _ := NewDecoder(pcmu.Format)
	pcm, _ := dec.Decode(nil, outs[0][12:])
	var sum float64
	for _, s := range pcm {
		sum += float64(s) * float64(s)
	}
	level := -20 * math.Log10(math.Sqrt(sum/float64(len(pcm)))/32767)
	if level < 37 || level > 43 {
		t.Fatalf("noise at -%.1f dBov, want about -40", level)
	}

	outs = nil
	tc, _ = NewTranscoder(Spec{In: []PT{pcmu}, Out: pcmu, Pass: []uint8{0}, CN: 13, SilenceCN: true})
	silence := make([]byte, 160)
	for i := range silence {
		silence[i] = 0xff
	}
	tc.Process(rtpPacket(0, 1, 160, 9, make([]byte, 160)), emit) // µ-law 0x00: loud, passes
	tc.Process(rtpPacket(0, 2, 320, 9, silence), emit)
	if len(outs) != 2 || outs[0][1]&0x7f != 0 || outs[1][1]&0x7f != 13 || len(outs[1]) != 13 || outs[1][12] != 32 {
		t.Fatalf("silence → %v", outs)
	}
}
