//go:build cgo && !notranscode

// Package spandspref exposes spandsp's G.711 for pkg/codec's tests: the
// reference its Go G.711 is checked against, bit for bit.
package spandspref

/*
#cgo pkg-config: spandsp
#include <stdint.h>
#include <spandsp.h>
static uint8_t ref_lin2ulaw(int16_t v) { return linear_to_ulaw(v); }
static int16_t ref_ulaw2lin(uint8_t v) { return ulaw_to_linear(v); }
static uint8_t ref_lin2alaw(int16_t v) { return linear_to_alaw(v); }
static int16_t ref_alaw2lin(uint8_t v) { return alaw_to_linear(v); }
*/
import "C"

// LinearToUlaw is spandsp's linear_to_ulaw.
func LinearToUlaw(v int16) uint8 { return uint8(C.ref_lin2ulaw(C.int16_t(v))) }

// UlawToLinear is spandsp's ulaw_to_linear.
func UlawToLinear(v uint8) int16 { return int16(C.ref_ulaw2lin(C.uint8_t(v))) }

// LinearToAlaw is spandsp's linear_to_alaw.
func LinearToAlaw(v int16) uint8 { return uint8(C.ref_lin2alaw(C.int16_t(v))) }

// AlawToLinear is spandsp's alaw_to_linear.
func AlawToLinear(v uint8) int16 { return int16(C.ref_alaw2lin(C.uint8_t(v))) }
