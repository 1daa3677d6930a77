package rtpfwd_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestExitsNonZeroWhenWatchEnds: when rtp-fwd's watch of the call records
// ends (here: the node's bucket is deleted under it), rtp-fwd can no
// longer follow the calls and must exit with a failure, so that its
// supervisor (systemd's Restart=on-failure) starts it again.
func TestExitsNonZeroWhenWatchEnds(t *testing.T) {
	srv := testutil.StartNATS(t)
	bin := testutil.Binaries(t)
	run := testutil.ShortTempDir(t)
	fwd := testutil.StartProc(t, filepath.Join(bin, "rtp-fwd"), []string{"--nats-url=" + srv.URL(), "--node-id=watchend", "--runtime-dir=" + run, "--loops=1"})
	conn := testutil.Connect(t, srv.URL(), "watchend", "test")
	testutil.AwaitPing(t, conn, "rtp-fwd", fwd)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := conn.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(ctx, nodestate.BucketName("watchend")); err != nil {
		t.Fatalf("delete bucket: %v", err)
	}
	code, err := fwd.Wait(20 * time.Second)
	if err != nil {
		t.Fatalf("rtp-fwd kept running with its watch gone: %v\n%s", err, fwd.Output())
	}
	if code == 0 {
		t.Fatalf("rtp-fwd exited 0 when its watch of the call records ended (a supervisor's Restart=on-failure leaves it down)\n%s", fwd.Output())
	}
	t.Logf("rtp-fwd exited %d", code)
}
