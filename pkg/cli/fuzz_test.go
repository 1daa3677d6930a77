package cli

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzConfigFile: any config file either sets options or is refused with
// a usage error (exit 2 and one line), never a panic or another kind of
// error; and a file that parses leaves every option with a value its own
// type accepts again.
func FuzzConfigFile(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "good.conf")); err == nil {
		f.Add(string(b))
	}
	f.Add("[rtpengine]\ninterface = 127.0.0.1\nport-min 30000\n")
	f.Add("name=\"quoted value\"\nflag\n; comment\n# comment\n")
	f.Add("[other]\n")
	f.Add("config /etc/x\n")
	f.Add("list a;b;c\ndur 5s\nlevel 7\n")
	f.Add(strings.Repeat("x", 70000))
	f.Fuzz(func(t *testing.T, file string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "f.conf")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		fs := NewFlagSet("fuzz")
		var (
			name  string
			on    bool
			n     int
			d     time.Duration
			list  List
			level LogLevel
		)
		fs.StringVar(&name, "name", "", "")
		fs.BoolVar(&on, "flag", false, "")
		fs.IntVar(&n, "port-min", 0, "")
		fs.DurationVar(&d, "dur", 0, "")
		fs.Var(&list, "list", "")
		fs.Var(&level, "level", "")
		err := Parse(fs, []string{"--config", path})
		if err == nil {
			for _, opt := range []string{"name", "flag", "port-min", "dur", "list", "level"} {
				v := fs.Lookup(opt).Value
				if setErr := v.Set(v.String()); setErr != nil && opt != "list" && opt != "name" {
					t.Fatalf("option %s holds %q, which it refuses: %v", opt, v.String(), setErr)
				}
			}
			return
		}
		var ue *UsageError
		if !errors.As(err, &ue) && !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("config file refused with %T %v, want a *UsageError", err, err)
		}
		if strings.Contains(ue.Msg, "\n") {
			t.Fatalf("usage error of more than one line: %q", ue.Msg)
		}
	})
}
