//go:build !cgo || notranscode

package codec

// OpusRate returns want: without libopus, Opus is not transcoded.
func OpusRate(want int) int { return want }

func newOpusDecAt(f Format, _ int) (Decoder, error) { return NewDecoder(f) }

func newOpusEncAt(f Format, ptime, _ int) (Encoder, error) { return NewEncoder(f, ptime) }
