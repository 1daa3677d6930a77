package cli

import (
	"os"
	"runtime/debug"
	"testing"
)

// TuneGC sets DefaultGCPercent unless GOGC is set, in which case the
// runtime has already applied the operator's value and TuneGC keeps it.
func TestTuneGC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		gogc  *string
		start int
		want  int
	}{
		{name: "GOGC unset", start: 100, want: DefaultGCPercent},
		{name: "GOGC set", gogc: new("50"), start: 50, want: 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.gogc != nil {
				t.Setenv("GOGC", *tc.gogc)
			} else {
				t.Setenv("GOGC", "")
				unsetenv(t, "GOGC")
			}
			old := debug.SetGCPercent(tc.start)
			defer debug.SetGCPercent(old)
			TuneGC()
			if got := debug.SetGCPercent(tc.start); got != tc.want {
				t.Fatalf("GC percent %d, want %d", got, tc.want)
			}
		})
	}
}

// unsetenv removes key for the rest of the test (t.Setenv has already
// arranged for its value to be restored).
func unsetenv(t *testing.T, key string) {
	t.Helper()
	if err := os.Unsetenv(key); err != nil {
		t.Fatal(err)
	}
}
