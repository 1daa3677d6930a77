//go:build cgo && !notranscode

package codec

import (
	"math"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/codec/internal/spandspref"
	"github.com/zaf/g711"
)

// TestG711BitExact checks the G.711 this build uses against spandsp's
// for every 16-bit sample and every code byte.
func TestG711BitExact(t *testing.T) {
	mu, _ := NewEncoder(Format{Name: "PCMU", Clock: 8000}, 20)
	a, _ := NewEncoder(Format{Name: "PCMA", Clock: 8000}, 20)
	mud, _ := NewDecoder(Format{Name: "PCMU", Clock: 8000})
	ad, _ := NewDecoder(Format{Name: "PCMA", Clock: 8000})
	for v := math.MinInt16; v <= math.MaxInt16; v++ {
		s := []int16{int16(v)}
		gu, _ := mu.Encode(nil, s)
		ga, _ := a.Encode(nil, s)
		if want := spandspref.LinearToUlaw(int16(v)); gu[0] != want {
			t.Fatalf("µ-law of %d: %#x, spandsp %#x", v, gu[0], want)
		}
		if want := spandspref.LinearToAlaw(int16(v)); ga[0] != want {
			t.Fatalf("A-law of %d: %#x, spandsp %#x", v, ga[0], want)
		}
	}
	for c := range 256 {
		gu, _ := mud.Decode(nil, []byte{byte(c)})
		ga, _ := ad.Decode(nil, []byte{byte(c)})
		if want := spandspref.UlawToLinear(uint8(c)); gu[0] != want {
			t.Fatalf("µ-law code %#x: %d, spandsp %d", c, gu[0], want)
		}
		if want := spandspref.AlawToLinear(uint8(c)); ga[0] != want {
			t.Fatalf("A-law code %#x: %d, spandsp %d", c, ga[0], want)
		}
	}
}

// TestG711PureGo pins what the build without the codec libraries does
// differently: zaf/g711's µ-law encoding of 127 negative inputs, one
// code step from spandsp's; everything else bit-exact.
func TestG711PureGo(t *testing.T) {
	off := 0
	for v := math.MinInt16; v <= math.MaxInt16; v++ {
		got, want := g711.EncodeUlawFrame(int16(v)), spandspref.LinearToUlaw(int16(v))
		if g711.EncodeAlawFrame(int16(v)) != spandspref.LinearToAlaw(int16(v)) {
			t.Fatalf("A-law of %d differs", v)
		}
		if got == want {
			continue
		}
		off++
		if v >= 0 || int(got)-int(want) != 1 && int(want)-int(got) != 1 {
			t.Fatalf("µ-law of %d: %#x, spandsp %#x", v, got, want)
		}
	}
	if off != 127 {
		t.Fatalf("%d µ-law inputs differ, want 127", off)
	}
}
