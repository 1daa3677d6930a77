package portd_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestFDLimitRefusesCleanly: under a low RLIMIT_NOFILE portd leases what
// fits and then refuses with a clear error.
func TestFDLimitRefusesCleanly(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	srv := testutil.StartNATS(t)
	dir := testutil.ShortTempDir(t)
	// Without CAP_SYS_RESOURCE (setpriv drops it, as a root in a
	// container may lack it anyway), portd cannot raise the hard limit
	// to what its 1000 ports need.
	args := []string{"--nofile=300:300", testutil.Binaries(t) + "/portd",
		"--nats-url=" + srv.URL(), "--node-id=fdl", "--runtime-dir=" + dir, "--interface=127.0.0.1",
		"--port-min=38000", "--port-max=38999"}
	cmd := "prlimit"
	if _, err := exec.LookPath("setpriv"); err == nil {
		args = append([]string{"--inh-caps=-sys_resource", "--bounding-set=-sys_resource", "prlimit"}, args...)
		cmd = "setpriv"
	}
	p := testutil.StartProc(t, cmd, args)
	p.WaitMatch(t, testutil.MatchLine(`open file limit.*nofile=300 media_sockets_max=44`), 10*time.Second)
	conn := testutil.Connect(t, srv.URL(), "fdl", "t")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r portdapi.LeaseReply
	var err error
	for i := 0; i < 100; i++ {
		if r, err = bus.Request(ctx, conn, portdapi.LeaseEndpoint, portdapi.LeaseRequest{Holder: "h", Family: 4, Count: 64}); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // portd still starting
	}
	if err != nil || len(r.Pairs) != 22 {
		t.Fatalf("want the 22 pairs that fit in 44 sockets, got %d (%v)", len(r.Pairs), err)
	}
	_, err = bus.Request(ctx, conn, portdapi.LeaseEndpoint, portdapi.LeaseRequest{Holder: "h", Family: 4, Count: 1})
	if !bus.IsCode(err, bus.CodeUnavailable) || !strings.Contains(err.Error(), "file descriptor limit reached") {
		t.Fatalf("past the limit: %v", err)
	}
}
