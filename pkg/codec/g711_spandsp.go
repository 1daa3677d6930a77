//go:build cgo && !notranscode

package codec

/*
#cgo pkg-config: spandsp
#include <stdint.h>
#include <spandsp.h>
static uint8_t rtpkit_lin2ulaw(int16_t v) { return linear_to_ulaw(v); }
*/
import "C"

func init() {
	ulawEncode = func(v int16) uint8 { return uint8(C.rtpkit_lin2ulaw(C.int16_t(v))) }
}
