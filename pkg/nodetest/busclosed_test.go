package nodetest

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestBusClosedExits: every daemon whose bus connection is closed for
// good — here the node's nats-server comes back requiring credentials the
// daemons do not have, so the server refuses their reconnects and the
// client library gives up — exits non-zero, so that its supervisor
// (`rtpctl up`, systemd) restarts it, instead of running on cut off from
// the bus.
func TestBusClosedExits(t *testing.T) {
	ns := testutil.StartNATSServer(t)
	bin := testutil.Binaries(t)
	run := testutil.ShortTempDir(t)
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"--nats-url=" + ns.URL(), "--node-id=bcl"}
	procs := map[string]*testutil.Proc{
		"portd":   testutil.StartProc(t, filepath.Join(bin, "portd"), append(common, "--runtime-dir="+run, "--interface=127.0.0.1", "--port-min=51600", "--port-max=51799")),
		"rtp-fwd": testutil.StartProc(t, filepath.Join(bin, "rtp-fwd"), append(common, "--runtime-dir="+run, "--loops=1")),
		"ng-ctl":  testutil.StartProc(t, filepath.Join(bin, "ng-ctl"), append(common, "--listen-ng=127.0.0.1:"+strconv.Itoa(ngPort))),
		// Without --redis redis-sync idles, but it stays on the bus.
		"redis-sync": testutil.StartProc(t, filepath.Join(bin, "redis-sync"), common),
	}
	procs["ng-ctl"].WaitMatch(t, testutil.MatchLine(`msg="port leases ready"`), 20*time.Second)
	procs["rtp-fwd"].WaitMatch(t, testutil.MatchLine(`msg="rtp-fwd ready"`), 20*time.Second)
	conn := testutil.Connect(t, ns.URL(), "bcl", "busclosed-test")
	testutil.AwaitPing(t, conn, "redis-sync", procs["redis-sync"])
	conn.Close()

	ns.Stop()
	ns.StartArgs("--user", "someone", "--pass", "else")

	deadline := time.Now().Add(30 * time.Second)
	for _, d := range []string{"portd", "rtp-fwd", "ng-ctl", "redis-sync"} {
		p := procs[d]
		code, err := p.Wait(time.Until(deadline))
		switch {
		case err != nil:
			t.Errorf("%s: %v after its bus connection was refused for good", d, err)
		case code == 0:
			t.Errorf("%s exited 0 after losing the bus, want non-zero:\n%s", d, p.Output())
		default:
			t.Logf("%s exited %d", d, code)
		}
	}
}
