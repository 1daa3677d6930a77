package testutil

import (
	"os"
	"strconv"
	"testing"
)

func testLogEnabled() bool { return os.Getenv("RTPKIT_TEST_LOG") != "" }

// EnvInt is the positive integer in the environment variable name (a
// measurement's knob), or def if it is unset; anything else fails the test.
func EnvInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
