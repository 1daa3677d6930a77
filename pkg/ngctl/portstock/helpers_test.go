package portstock_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// node is a bus with a real portd (the built binary) for a stock to lease
// from.
type node struct {
	t     *testing.T
	args  []string
	conn  *bus.Conn
	portd *testutil.Proc
}

func newNode(t *testing.T, args ...string) *node {
	t.Helper()
	srv := testutil.StartNATS(t)
	id := "s" + strconv.Itoa(os.Getpid())
	n := &node{t: t}
	n.args = append([]string{"--nats-url=" + srv.URL(), "--node-id=" + id, "--runtime-dir=" + testutil.ShortTempDir(t), "--log-level=debug"}, args...)
	n.conn = testutil.Connect(t, srv.URL(), id, "test")
	n.startPortd()
	return n
}

func (n *node) startPortd() {
	n.t.Helper()
	n.portd = testutil.StartProc(n.t, testutil.Binaries(n.t)+"/portd", n.args)
	testutil.AwaitPing(n.t, n.conn, portdapi.Daemon, n.portd)
}

func (n *node) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	n.t.Cleanup(cancel)
	return ctx
}

func (n *node) list() portdapi.ListReply {
	n.t.Helper()
	r, err := bus.Request(n.ctx(), n.conn, portdapi.ListEndpoint, api.Empty{})
	if err != nil {
		n.t.Fatalf("list: %v", err)
	}
	return r
}
