//go:build cgo && !notranscode

package codec

// Resampling through speexdsp's resampler (quality 5, its VoIP default).

/*
#cgo pkg-config: speexdsp
#include <speex/speex_resampler.h>
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Resampler converts mono 16-bit PCM from one rate to another.
type Resampler struct {
	st       *C.SpeexResamplerState
	from, to int
}

// NewResampler returns a resampler from rate from to rate to.
func NewResampler(from, to int) (*Resampler, error) {
	var errc C.int
	st := C.speex_resampler_init(1, C.spx_uint32_t(from), C.spx_uint32_t(to), 5, &errc)
	if st == nil {
		return nil, fmt.Errorf("resampler %d→%d: speexdsp error %d", from, to, int(errc))
	}
	r := &Resampler{st: st, from: from, to: to}
	runtime.AddCleanup(r, func(st *C.SpeexResamplerState) { C.speex_resampler_destroy(st) }, st)
	return r, nil
}

// Process appends in, resampled, to out.
func (r *Resampler) Process(out, in []int16) []int16 {
	for len(in) > 0 {
		room := len(in)*r.to/r.from + 64
		n := len(out)
		out = growPCM(out, room)
		inLen, outLen := C.spx_uint32_t(len(in)), C.spx_uint32_t(room)
		C.speex_resampler_process_int(r.st, 0, (*C.spx_int16_t)(unsafe.Pointer(&in[0])), &inLen,
			(*C.spx_int16_t)(unsafe.Pointer(&out[n])), &outLen)
		out = out[:n+int(outLen)]
		if inLen == 0 && outLen == 0 {
			break
		}
		in = in[int(inLen):]
	}
	runtime.KeepAlive(r)
	return out
}
