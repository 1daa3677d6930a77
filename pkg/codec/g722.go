//go:build cgo && !notranscode

package codec

// G.722 through spandsp (libspandsp): 16 kHz audio at 64 kbit/s, an RTP
// clock of 8000 (RFC 3551 §4.5.2).

/*
#cgo pkg-config: spandsp
#include <stdlib.h>
#include <stdint.h>
#include <spandsp.h>
*/
import "C"

import (
	"errors"
	"runtime"
	"unsafe"
)

func init() {
	register("g722", factory{dec: newG722Dec, enc: newG722Enc})
}

type g722Dec struct{ st *C.g722_decode_state_t }

func newG722Dec(Format) (Decoder, error) {
	st := C.g722_decode_init(nil, 64000, 0)
	if st == nil {
		return nil, errors.New("g722: decoder init failed")
	}
	d := &g722Dec{st: st}
	runtime.AddCleanup(d, func(st *C.g722_decode_state_t) { C.g722_decode_free(st) }, st)
	return d, nil
}

func (*g722Dec) Rate() int { return 16000 }

func (d *g722Dec) Decode(pcm []int16, payload []byte) ([]int16, error) {
	if len(payload) == 0 {
		return pcm, nil
	}
	n := len(pcm)
	pcm = growPCM(pcm, 2*len(payload))
	got := C.g722_decode(d.st, (*C.int16_t)(unsafe.Pointer(&pcm[n])), (*C.uint8_t)(unsafe.Pointer(&payload[0])), C.int(len(payload)))
	runtime.KeepAlive(d)
	return pcm[:n+int(got)], nil
}

type g722Enc struct {
	st    *C.g722_encode_state_t
	frame int
}

func newG722Enc(_ Format, ptime int) (Encoder, error) {
	st := C.g722_encode_init(nil, 64000, 0)
	if st == nil {
		return nil, errors.New("g722: encoder init failed")
	}
	e := &g722Enc{st: st, frame: 16 * ptime}
	runtime.AddCleanup(e, func(st *C.g722_encode_state_t) { C.g722_encode_free(st) }, st)
	return e, nil
}

func (*g722Enc) Rate() int           { return 16000 }
func (e *g722Enc) FrameSamples() int { return e.frame }

func (e *g722Enc) Encode(out []byte, pcm []int16) ([]byte, error) {
	if len(pcm) == 0 {
		return out, nil
	}
	n := len(out)
	out = growBytes(out, len(pcm)/2+1)
	got := C.g722_encode(e.st, (*C.uint8_t)(unsafe.Pointer(&out[n])), (*C.int16_t)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)))
	runtime.KeepAlive(e)
	return out[:n+int(got)], nil
}
