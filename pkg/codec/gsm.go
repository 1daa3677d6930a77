//go:build cgo && !notranscode

package codec

// GSM 06.10 full rate through libgsm: 33-byte frames of 20 ms at 8 kHz
// (RFC 3551 §4.5.8).

/*
#cgo LDFLAGS: -lgsm
#include <gsm/gsm.h>
*/
import "C"

import (
	"errors"
	"runtime"
	"unsafe"
)

func init() {
	register("gsm", factory{dec: newGSMDec, enc: newGSMEnc})
}

type gsmCodec struct {
	g     C.gsm
	frame int
	out   [160]C.gsm_signal
}

func newGSM() (*gsmCodec, error) {
	g := C.gsm_create()
	if g == nil {
		return nil, errors.New("gsm: init failed")
	}
	c := &gsmCodec{g: g, frame: 160}
	runtime.AddCleanup(c, func(g C.gsm) { C.gsm_destroy(g) }, g)
	return c, nil
}

func newGSMDec(Format) (Decoder, error) { return newGSM() }

func newGSMEnc(_ Format, ptime int) (Encoder, error) {
	c, err := newGSM()
	if err != nil {
		return nil, err
	}
	c.frame = 160 * max(1, ptime/20)
	return c, nil
}

func (*gsmCodec) Rate() int           { return 8000 }
func (c *gsmCodec) FrameSamples() int { return c.frame }

func (c *gsmCodec) Decode(pcm []int16, payload []byte) ([]int16, error) {
	for ; len(payload) >= 33; payload = payload[33:] {
		if C.gsm_decode(c.g, (*C.gsm_byte)(unsafe.Pointer(&payload[0])), &c.out[0]) != 0 {
			return pcm, errors.New("gsm: bad frame")
		}
		for _, s := range c.out {
			pcm = append(pcm, int16(s))
		}
	}
	runtime.KeepAlive(c)
	return pcm, nil
}

func (c *gsmCodec) Encode(out []byte, pcm []int16) ([]byte, error) {
	var frame [33]C.gsm_byte
	for i := 0; i+160 <= len(pcm); i += 160 {
		C.gsm_encode(c.g, (*C.gsm_signal)(unsafe.Pointer(&pcm[i])), &frame[0])
		for _, b := range frame {
			out = append(out, byte(b))
		}
	}
	runtime.KeepAlive(c)
	return out, nil
}
