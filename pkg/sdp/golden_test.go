package sdp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.out.sdp golden files")

// goldenPlan is the content of a <name>.plan.json file: a Plan, plus
// KeepPT to fill in codecs from the input. For every RTP media whose
// Codecs is absent (null), the test uses the input's PayloadTypes,
// restricted to the numbers in KeepPT[i] when that entry is not null
// (answer filtering). "Codecs": [] gives an explicitly empty list.
type goldenPlan struct {
	Plan
	KeepPT [][]int `json:",omitempty"`
}

// loadPlan reads a plan file and completes it against the parsed input.
func loadPlan(t testing.TB, path string, s *Session) Plan {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var g goldenPlan
	if err := dec.Decode(&g); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	p := g.Plan
	for i, m := range s.Media() {
		if i >= len(p.Media) || p.Media[i].Codecs != nil || !m.IsRTP() {
			continue
		}
		pts, err := m.PayloadTypes()
		if err != nil {
			t.Fatalf("%s: media %d: %v", path, i+1, err)
		}
		if i < len(g.KeepPT) && g.KeepPT[i] != nil {
			pts = slices.DeleteFunc(pts, func(pt PayloadType) bool { return !slices.Contains(g.KeepPT[i], pt.PT) })
		}
		p.Media[i].Codecs = pts
	}
	return p
}

func goldenNames(t testing.TB) []string {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.sdp"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(ins))
	for _, in := range ins {
		names = append(names, strings.TrimSuffix(filepath.Base(in), ".in.sdp"))
	}
	return names
}

func TestGolden(t *testing.T) {
	names := goldenNames(t)
	if len(names) < 25 {
		t.Fatalf("only %d golden cases", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			base := filepath.Join("testdata", name)
			in, err := os.ReadFile(base + ".in.sdp")
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			plan := loadPlan(t, base+".plan.json", s)
			got, err := Rewrite(s, plan)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			if *update {
				if err := os.WriteFile(base+".out.sdp", got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(base + ".out.sdp")
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s.out.sdp\n got: %q\nwant: %q", base, got, want)
			}
			// The input is not modified and a second rewrite is identical.
			again, err := Rewrite(s, plan)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("second Rewrite differs: %v", err)
			}
		})
	}
}
