//go:build !race

package fwd

const raceEnabled = false
