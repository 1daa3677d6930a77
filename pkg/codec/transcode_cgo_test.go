//go:build cgo && !notranscode

package codec

import "testing"

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
