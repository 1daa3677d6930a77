//go:build race

package mediabench

const raceEnabled = true
