package rtpfwd_test

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestForwardingOutlivesEverythingElse: once a call's streams are
// installed, rtp-fwd keeps forwarding with the bus, portd and ng-ctl all
// gone (each daemon started on its own against Debian's nats-server).
func TestForwardingOutlivesEverythingElse(t *testing.T) {
	natsd := testutil.StartNATSServer(t)
	url := natsd.URL()
	bin := testutil.Binaries(t)
	run := testutil.ShortTempDir(t)
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	common := []string{"--nats-url=" + url, "--node-id=indep"}
	portd := testutil.StartProc(t, filepath.Join(bin, "portd"), append(common, "--runtime-dir="+run, "--interface=127.0.0.1", "--port-min=44000", "--port-max=44999"))
	fwd := testutil.StartProc(t, filepath.Join(bin, "rtp-fwd"), append(common, "--runtime-dir="+run, "--loops=1"))
	ngctl := testutil.StartProc(t, filepath.Join(bin, "ng-ctl"), append(common, "--listen-ng="+ngAddr))
	ngctl.WaitMatch(t, testutil.MatchLine(`msg="port leases ready"`), 20*time.Second)
	fwd.WaitMatch(t, testutil.MatchLine(`msg="connected to portd"`), 20*time.Second)

	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	c, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	toB := testutil.NGOK(t, ctx, c, testutil.NGCall("offer", "indep1", "", sdpFor(port(a))))
	toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", "indep1", "B", sdpFor(port(b))))
	dstA := udpAddr(mPort.FindStringSubmatch(toA)[1])
	dstB := udpAddr(mPort.FindStringSubmatch(toB)[1])
	testutil.Relay(t, a, dstA, b, 7, 1)
	testutil.Relay(t, b, dstB, a, 8, 1)

	for _, p := range []*testutil.Proc{ngctl, portd} {
		_ = p.Signal(syscall.SIGKILL)
		if _, err := p.Wait(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	natsd.Kill()
	for seq := uint16(2); seq < 12; seq++ {
		testutil.Relay(t, a, dstA, b, 7, seq)
		testutil.Relay(t, b, dstB, a, 8, seq)
	}
	if !testutil.Alive(fwd.PID()) {
		t.Fatalf("rtp-fwd died with the others:\n%s", fwd.Output())
	}
}

func port(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

func udpAddr(p string) *net.UDPAddr {
	n, _ := strconv.Atoi(p)
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: n}
}
