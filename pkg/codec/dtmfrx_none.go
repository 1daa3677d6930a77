//go:build !cgo || notranscode

package codec

// DTMFDetector finds DTMF digits in 8 kHz PCM; a build without spandsp
// has none.
type DTMFDetector struct{}

// NewDTMFDetector fails: this build has no DTMF receiver.
func NewDTMFDetector() (*DTMFDetector, error) { return nil, ErrUnsupported }

// Feed is never reached.
func (*DTMFDetector) Feed([]int16) string { return "" }

// Status is never reached.
func (*DTMFDetector) Status() byte { return 0 }
