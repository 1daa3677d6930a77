//go:build cgo && !notranscode

package codec

// In-band DTMF detection through spandsp's DTMF receiver.

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

// DTMFDetector finds DTMF digits in 8 kHz PCM.
type DTMFDetector struct {
	st  *C.dtmf_rx_state_t
	buf [64]C.char
}

// NewDTMFDetector returns a detector.
func NewDTMFDetector() (*DTMFDetector, error) {
	st := C.dtmf_rx_init(nil, nil, nil)
	if st == nil {
		return nil, errors.New("dtmf: receiver init failed")
	}
	d := &DTMFDetector{st: st}
	runtime.AddCleanup(d, func(st *C.dtmf_rx_state_t) { C.dtmf_rx_free(st) }, st)
	return d, nil
}

// Feed gives the detector 8 kHz samples and returns the digits ('0'–'9',
// '*', '#', 'A'–'D') it found complete since the last call.
func (d *DTMFDetector) Feed(pcm []int16) string {
	if len(pcm) > 0 {
		C.dtmf_rx(d.st, (*C.int16_t)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)))
	}
	n := C.dtmf_rx_get(d.st, &d.buf[0], C.int(len(d.buf)-1))
	runtime.KeepAlive(d)
	return C.GoStringN(&d.buf[0], C.int(n))
}

// Status is the digit heard at the end of the samples fed so far (0:
// none).
func (d *DTMFDetector) Status() byte {
	st := C.dtmf_rx_status(d.st)
	runtime.KeepAlive(d)
	if st == 'x' {
		return 0 // "maybe": not a digit yet
	}
	return byte(st)
}
