//go:build !cgo || notranscode

package codec

import "fmt"

// Resampler converts mono 16-bit PCM from one rate to another; a build
// without the codec libraries has only G.711's 8 kHz and none.
type Resampler struct{}

// NewResampler fails: this build has no resampler.
func NewResampler(from, to int) (*Resampler, error) {
	return nil, fmt.Errorf("resampler %d→%d: %w", from, to, ErrUnsupported)
}

// Process is never reached.
func (*Resampler) Process(out, in []int16) []int16 { return append(out, in...) }
