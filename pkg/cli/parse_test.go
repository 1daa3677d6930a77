package cli

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type testConfig struct {
	Common
	Interfaces List
	PortMin    int
	PortMax    int
	Verbose    bool
}

func (c *testConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	fs.Var(&c.Interfaces, "interface", "interfaces")
	fs.IntVar(&c.PortMin, "port-min", 30000, "min")
	fs.IntVar(&c.PortMax, "port-max", 40000, "max")
	fs.BoolVar(&c.Verbose, "verbose", false, "verbose")
}

func parseTest(t *testing.T, args []string, env map[string]string) (*testConfig, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var c testConfig
	fs := NewFlagSet("test")
	c.RegisterFlags(fs)
	return &c, Parse(fs, args)
}

func TestPrecedenceFlagEnvFileDefault(t *testing.T) {
	file := filepath.Join("testdata", "good.conf")
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantMin    int
		wantMax    int
		wantIfaces []string
	}{
		{name: "defaults", wantMin: 30000, wantMax: 40000},
		{name: "file", args: []string{"--config", file}, wantMin: 32000, wantMax: 33000,
			wantIfaces: []string{"pub/192.0.2.10!203.0.113.10", "priv/10.0.0.10"}},
		{name: "env beats file", args: []string{"--config", file}, env: map[string]string{"RTPKIT_PORT_MIN": "31000", "RTPKIT_INTERFACE": "a/127.0.0.1;b/127.0.0.2"},
			wantMin: 31000, wantMax: 33000, wantIfaces: []string{"a/127.0.0.1", "b/127.0.0.2"}},
		{name: "flag beats env and file", args: []string{"--config", file, "--port-min=30500", "--interface", "x/127.0.0.3", "--interface=y/127.0.0.4"},
			env: map[string]string{"RTPKIT_PORT_MIN": "31000"}, wantMin: 30500, wantMax: 33000, wantIfaces: []string{"x/127.0.0.3", "y/127.0.0.4"}},
		{name: "config file from env", env: map[string]string{"RTPKIT_CONFIG": file}, wantMin: 32000, wantMax: 33000,
			wantIfaces: []string{"pub/192.0.2.10!203.0.113.10", "priv/10.0.0.10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseTest(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.PortMin != tt.wantMin || c.PortMax != tt.wantMax || strings.Join(c.Interfaces, ",") != strings.Join(tt.wantIfaces, ",") {
				t.Fatalf("got min %d max %d ifaces %q", c.PortMin, c.PortMax, c.Interfaces)
			}
		})
	}
}

func TestBadOptionsAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "unknown flag", args: []string{"--no-such"}, want: "unknown option --no-such"},
		{name: "bad int", args: []string{"--port-min=abc"}, want: `invalid value "abc" for option --port-min`},
		{name: "missing value", args: []string{"--port-min"}, want: "option --port-min needs a value"},
		{name: "bad log level", args: []string{"--log-level=9"}, want: "not a log level"},
		{name: "bad env value", env: map[string]string{"RTPKIT_PORT_MAX": "lots"}, want: "RTPKIT_PORT_MAX"},
		{name: "unknown file option", args: []string{"--config", write("a.conf", "port-min 1\ntable 0\n")}, want: `line 2: unknown option "table"`},
		{name: "bad file value", args: []string{"--config", write("b.conf", "# c\n\nport-max = x\n")}, want: "line 3:"},
		{name: "file value missing", args: []string{"--config", write("c.conf", "port-max\n")}, want: `line 1: option "port-max" needs a value`},
		{name: "unknown section", args: []string{"--config", write("d.conf", "[other]\n")}, want: "unknown section [other]"},
		{name: "missing file", args: []string{"--config", filepath.Join(dir, "nope.conf")}, want: "nope.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTest(t, tt.args, tt.env)
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v (%T), want *UsageError", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %q, want one line containing %q", err, tt.want)
			}
		})
	}
}

func TestBoolInFileAndHelp(t *testing.T) {
	p := filepath.Join(t.TempDir(), "b.conf")
	if err := os.WriteFile(p, []byte("verbose\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseTest(t, []string{"--config", p}, nil)
	if err != nil || !c.Verbose {
		t.Fatalf("bare bool in file: %v %v", c.Verbose, err)
	}
	if _, err := parseTest(t, []string{"--help"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
}

func TestLogLevel(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want slog.Level
		ok   bool
	}{
		{"7", slog.LevelDebug, true}, {"debug", slog.LevelDebug, true}, {"6", slog.LevelInfo, true}, {"5", slog.LevelInfo, true},
		{"4", slog.LevelWarn, true}, {"WARN", slog.LevelWarn, true}, {"3", slog.LevelError, true}, {"0", slog.LevelError, true},
		{"8", 0, false}, {"loud", 0, false},
	} {
		var l LogLevel
		err := l.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && l.Level != tt.want) {
			t.Errorf("Set(%q) = %v, %v; want %v ok=%v", tt.in, l.Level, err, tt.want, tt.ok)
		}
	}
}

func TestListRoundTrip(t *testing.T) {
	var l List
	for _, v := range []string{"a", "b; c", ";", " d "} {
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.String(); got != "a;b;c;d" {
		t.Fatalf("String() = %q", got)
	}
	var back List
	_ = back.Set(l.String())
	if strings.Join(back, ",") != "a,b,c,d" {
		t.Fatalf("round trip %q", back)
	}
	var il IntList
	if err := il.Set("1;2"); err != nil || il.String() != "1;2" {
		t.Fatalf("IntList %v %v", il, err)
	}
	if err := il.Set("x"); err == nil {
		t.Fatal("IntList accepted x")
	}
}

func TestSharedConfigSkipsSiblingOptions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node.conf")
	if err := os.WriteFile(p, []byte("[rtpkit]\nlisten-ng = 127.0.0.1:2223\nredis = 127.0.0.1:6379/1\nport-min 31000\nwait 5s\njson\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseTest(t, []string{"--config", p}, nil)
	if err != nil || c.PortMin != 31000 {
		t.Fatalf("shared file: %v %d", err, c.PortMin)
	}
}
