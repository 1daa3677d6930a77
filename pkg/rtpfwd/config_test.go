package rtpfwd

import (
	"flag"
	"io"
	"testing"
)

func TestValidateEndpointLearning(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"delayed", true}, {"immediate", true}, {"off", true}, {"heuristic", true}, {"Heuristic", true},
		{"sometimes", false},
	} {
		var cfg Config
		fs := flag.NewFlagSet("rtp-fwd", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.RegisterFlags(fs)
		if err := fs.Parse([]string{"--endpoint-learning=" + tc.value}); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("--endpoint-learning %q: %v, want ok %v", tc.value, err, tc.ok)
		}
	}
}
