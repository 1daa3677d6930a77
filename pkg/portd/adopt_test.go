package portd_test

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/fdpass"
	"github.com/rtpkit/rtpkit/pkg/handoff"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// badSocket makes a descriptor that is not a usable media socket for
// 127.0.0.1:17500.
type badSocket struct {
	name string
	make func(t *testing.T) int
}

func socketFD(t *testing.T, domain, typ int, bind unix.Sockaddr) int {
	t.Helper()
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	if bind != nil {
		if err := unix.Bind(fd, bind); err != nil {
			t.Fatalf("bind: %v", err)
		}
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	return fd
}

var badSockets = []badSocket{
	{"pipe", func(t *testing.T) int {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Close(p[0]); _ = unix.Close(p[1]) })
		return p[0]
	}},
	{"tcp socket", func(t *testing.T) int {
		return socketFD(t, unix.AF_INET, unix.SOCK_STREAM, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	}},
	{"unbound udp", func(t *testing.T) int { return socketFD(t, unix.AF_INET, unix.SOCK_DGRAM, nil) }},
	{"udp on another port", func(t *testing.T) int {
		return socketFD(t, unix.AF_INET, unix.SOCK_DGRAM, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	}},
	{"udp6", func(t *testing.T) int {
		return socketFD(t, unix.AF_INET6, unix.SOCK_DGRAM, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()})
	}},
}

// TestBadAdoptClosedOnce: a worker hands back, for a pair portd is waiting
// to adopt, descriptors that are no media socket of that address. portd
// (traced with strace) must close each of its copies exactly once: a second
// close of the same number is EBADF at best, and at worst closes whatever
// portd opened under that number in the meantime.
func TestBadAdoptClosedOnce(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatal("strace not installed (make test installs it)")
		}
		t.Skip("strace not installed")
	}
	testutil.RequireRoot(t)
	n := newNode(t, "--interface=127.0.0.1", "--port-min=17500", "--port-max=17599")
	rtp, rtcp := netip.MustParseAddrPort("127.0.0.1:17500"), netip.MustParseAddrPort("127.0.0.1:17501")
	// Someone (a worker of the previous run) holds the ports: portd waits
	// for them to be handed back.
	for _, ap := range []netip.AddrPort{rtp, rtcp} {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	if _, err := bus.Request(n.ctx(), n.conn, portdapi.BindEndpoint, portdapi.BindRequest{Call: "adopt-1", Pairs: []portdapi.Pair{{RTP: rtp, RTCP: rtcp}}}); err != nil {
		t.Fatalf("bind: %v", err)
	}

	out := filepath.Join(t.TempDir(), "strace.out")
	tr := testutil.StartProc(t, strace, []string{"-f", "-e", "trace=close,recvmsg,getsockopt", "-o", out, "-p", strconv.Itoa(n.portd.PID())})
	tr.WaitMatch(t, regexp.MustCompile(`Process \d+ attached`), 10*time.Second)
	time.Sleep(200 * time.Millisecond) // every thread attached

	c, err := fdpass.Dial(filepath.Join(n.runtimeDir, handoff.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	items := []fdpass.Item{{Meta: handoff.Msg{Op: handoff.OpHello, Worker: "bad"}.Encode(), FD: fdpass.NoFD}}
	for _, b := range badSockets {
		items = append(items, fdpass.Item{Meta: handoff.Msg{Op: handoff.OpAdopt, Local: rtp, Network: "udp"}.Encode(), FD: b.make(t)})
	}
	items = append(items, fdpass.Item{Meta: handoff.Msg{Op: handoff.OpSynced}.Encode(), FD: fdpass.NoFD})
	if err := c.Send(items); err != nil {
		t.Fatal(err)
	}
	n.portd.WaitMatch(t, regexp.MustCompile(`worker connected.*worker=bad`), 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	_ = tr.Signal(syscall.SIGINT)
	if _, err := tr.Wait(5 * time.Second); err != nil {
		t.Logf("strace: %v", err)
	}
	trace, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bad := regexp.MustCompile(`(?m)^.*close\(\d+\)\s+= -1 EBADF.*$`).FindAllString(string(trace), -1); len(bad) > 0 {
		t.Errorf("portd closed %d descriptors it had closed already:\n%s\nfull trace:\n%s", len(bad), joinLines(bad), trace)
	}
	if got := len(regexp.MustCompile(`handed back an unusable socket`).FindAllString(n.portd.Output(), -1)); got != len(badSockets) {
		t.Errorf("%d unusable sockets logged, want %d", got, len(badSockets))
	}
	// The pair is still waiting for its sockets; portd's count is as before.
	if l := n.list(); l.Sockets != 0 {
		t.Errorf("portd holds %d sockets, want 0", l.Sockets)
	}
}

func joinLines(ls []string) string {
	s := ""
	for _, l := range ls {
		s += l + "\n"
	}
	return s
}
