package rtpctl

import (
	"flag"
	"sort"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/cli"
)

// TestNodeOptionsMatchDaemons keeps cli.NodeOptions (the options a shared
// config file may hold) equal to what the daemons and `rtpctl up` take.
func TestNodeOptionsMatchDaemons(t *testing.T) {
	u := newUpCmd()
	have := map[string]bool{}
	u.fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			have[f.Name] = true
		}
	})
	var missing, extra []string
	for n := range have {
		if !cli.NodeOptions[n] {
			missing = append(missing, n)
		}
	}
	for n := range cli.NodeOptions {
		if !have[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("cli.NodeOptions out of date: missing %v, not taken by any daemon %v", missing, extra)
	}
}

// TestClientOptionsKnownToDaemons: every option of rtpctl's client commands
// is a node option or in cli.ClientOptions, so that a daemon reading a
// node-wide config file skips it rather than refusing it.
func TestClientOptionsKnownToDaemons(t *testing.T) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	var o clientOptions
	o.register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !cli.NodeOptions[f.Name] && !cli.ClientOptions[f.Name] {
			t.Errorf("client option --%s is in neither cli.NodeOptions nor cli.ClientOptions", f.Name)
		}
	})
}

// TestChildArgsGiveEachDaemonItsPart: one union of options, each daemon gets
// only its own, with values as set and repeatables intact.
func TestChildArgsGiveEachDaemonItsPart(t *testing.T) {
	u := newUpCmd()
	if err := u.parse([]string{"--interface=a/127.0.0.1", "--interface=b/127.0.0.2", "--listen-ng=127.0.0.1:5000",
		"--port-min=31000", "--subscribe-keyspace=3", "--log-level=7"}); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, d := range u.daemons {
		got[d.name] = childArgs(u.memberFS(d.name), map[string]string{"nats-url": "nats://x", "node-id": "n"})
	}
	want := map[string][]string{
		"portd":      {"--interface=a/127.0.0.1;b/127.0.0.2", "--log-level=debug", "--nats-url=nats://x", "--node-id=n", "--port-min=31000"},
		"ng-ctl":     {"--listen-ng=127.0.0.1:5000", "--log-level=debug", "--nats-url=nats://x", "--node-id=n"},
		"redis-sync": {"--log-level=debug", "--nats-url=nats://x", "--node-id=n", "--subscribe-keyspace=3"},
		"rtp-fwd":    {"--log-level=debug", "--nats-url=nats://x", "--node-id=n"},
	}
	for name, w := range want {
		if g := got[name]; len(g) != len(w) || !equal(g, w) {
			t.Errorf("%s args %q, want %q", name, g, w)
		}
	}
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
