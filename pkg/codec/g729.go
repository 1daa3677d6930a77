//go:build cgo && !notranscode

package codec

// G.729 (Annex A compatible) through bcg729: 10-byte frames of 10 ms at 8
// kHz, RFC 3551 §4.5.6; an RTP payload is whole frames, possibly ending
// with a 2-byte Annex B SID frame. rtpkit's encoder sends no SID (VAD
// off); the decoder takes them.

/*
#cgo pkg-config: libbcg729
#include <stdint.h>
#include <bcg729/encoder.h>
#include <bcg729/decoder.h>
*/
import "C"

import (
	"errors"
	"runtime"
	"unsafe"
)

func init() {
	register("g729", factory{dec: newG729Dec, enc: newG729Enc})
}

type g729Dec struct {
	st  *C.bcg729DecoderChannelContextStruct
	out [80]C.int16_t
}

func newG729Dec(Format) (Decoder, error) {
	st := C.initBcg729DecoderChannel()
	if st == nil {
		return nil, errors.New("g729: decoder init failed")
	}
	d := &g729Dec{st: st}
	runtime.AddCleanup(d, func(st *C.bcg729DecoderChannelContextStruct) { C.closeBcg729DecoderChannel(st) }, st)
	return d, nil
}

func (*g729Dec) Rate() int { return 8000 }

func (d *g729Dec) Decode(pcm []int16, payload []byte) ([]int16, error) {
	for len(payload) > 0 {
		n, sid := 10, C.uint8_t(0)
		if len(payload) < 10 {
			n, sid = len(payload), 1 // a SID frame (2 bytes) ends the payload
		}
		C.bcg729Decoder(d.st, (*C.uint8_t)(unsafe.Pointer(&payload[0])), C.uint8_t(n), 0, sid, 0, &d.out[0])
		for _, s := range d.out {
			pcm = append(pcm, int16(s))
		}
		payload = payload[n:]
	}
	runtime.KeepAlive(d)
	return pcm, nil
}

type g729Enc struct {
	st    *C.bcg729EncoderChannelContextStruct
	frame int
	buf   [10]C.uint8_t
}

func newG729Enc(_ Format, ptime int) (Encoder, error) {
	st := C.initBcg729EncoderChannel(0)
	if st == nil {
		return nil, errors.New("g729: encoder init failed")
	}
	if ptime < 10 {
		ptime = 10
	}
	e := &g729Enc{st: st, frame: 80 * (ptime / 10)}
	runtime.AddCleanup(e, func(st *C.bcg729EncoderChannelContextStruct) { C.closeBcg729EncoderChannel(st) }, st)
	return e, nil
}

func (*g729Enc) Rate() int           { return 8000 }
func (e *g729Enc) FrameSamples() int { return e.frame }

func (e *g729Enc) Encode(out []byte, pcm []int16) ([]byte, error) {
	for i := 0; i+80 <= len(pcm); i += 80 {
		var n C.uint8_t
		C.bcg729Encoder(e.st, (*C.int16_t)(unsafe.Pointer(&pcm[i])), &e.buf[0], &n)
		for _, b := range e.buf[:n] {
			out = append(out, byte(b))
		}
	}
	runtime.KeepAlive(e)
	return out, nil
}
