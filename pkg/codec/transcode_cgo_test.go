//go:build cgo && !notranscode

package codec

import (
	"encoding/binary"
	"testing"
)

func TestRoundTripOpus(t *testing.T) {
	for _, f := range []Format{{Name: "opus", Clock: 48000, Channels: 2}, {Name: "opus", Clock: 48000, Channels: 2, Fmtp: "stereo=1; useinbandfec=1"}} {
		if v := roundTrip(t, PT{96, f}, 20); v < 20 {
			t.Fatalf("%s %s: SNR %.1f dB", f, f.Fmtp, v)
		}
	}
}

func TestRoundTripG722(t *testing.T) {
	if v := roundTrip(t, PT{9, Format{Name: "G722", Clock: 8000}}, 20); v < 30 {
		t.Fatalf("SNR %.1f dB", v)
	}
}

// TestOpusDefaultPtime: a spec without ptime makes 20 ms Opus packets,
// one per 20 ms PCMU packet.
func TestOpusDefaultPtime(t *testing.T) {
	spec := Spec{In: []PT{{0, Format{Name: "PCMU", Clock: 8000}}}, Out: PT{96, Format{Name: "opus", Clock: 48000, Channels: 2}}}
	outs := run(t, spec, [][]byte{make([]byte, 160), make([]byte, 160), make([]byte, 160)}, 8000)
	if len(outs) != 3 {
		t.Fatalf("%d Opus packets for three of PCMU", len(outs))
	}
	for i, o := range outs {
		if ts := binary.BigEndian.Uint32(o[4:8]); ts != uint32(3000+960*i) {
			t.Fatalf("packet %d: timestamp %d, want %d", i, ts, 3000+960*i)
		}
	}
}

func TestRoundTripG729AndGSM(t *testing.T) {
	for _, c := range []PT{{18, Format{Name: "G729", Clock: 8000}}, {3, Format{Name: "GSM", Clock: 8000}}} {
		if v := roundTrip(t, c, 20); v < 8 {
			t.Fatalf("%s: SNR %.1f dB", c.Format, v)
		}
	}
}

// TestDTMFClockScaled: an 8 kHz telephone-event for a receiver whose
// telephone-event runs at Opus's 48 kHz has its timestamp and duration
// scaled.
func TestDTMFClockScaled(t *testing.T) {
	spec := Spec{In: []PT{{0, Format{Name: "PCMU", Clock: 8000}}, {101, Format{Name: "telephone-event", Clock: 8000}}},
		Out: PT{96, Format{Name: "opus", Clock: 48000, Channels: 2}}, DTMF: 97, DTMFClock: 48000}
	tc, err := NewTranscoder(spec)
	if err != nil {
		t.Fatal(err)
	}
	var outs [][]byte
	emit := func(b []byte) { outs = append(outs, append([]byte(nil), b...)) }
	tc.Process(rtpPacket(0, 1, 1000, 5, make([]byte, 160)), emit)
	tc.Process(rtpPacket(101, 2, 1160, 5, []byte{4, 10, 0, 160}), emit)
	if len(outs) != 2 {
		t.Fatalf("%d packets out", len(outs))
	}
	ev := outs[1]
	if ev[1]&0x7f != 97 || binary.BigEndian.Uint32(ev[4:8]) != 1000+160*6 || binary.BigEndian.Uint16(ev[14:16]) != 960 {
		t.Fatalf("event out: % x", ev[:16])
	}
}
