package fdpass

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/mediasock"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// Environment of the helper process.
const (
	helperModeEnv = "FDPASS_TEST_HELPER"
	helperPathEnv = "FDPASS_TEST_PATH"
)

// TestHelperProcess is not a test: it is the child process of the tests
// below, which re-run the test binary with helperModeEnv set.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperModeEnv)
	if mode == "" {
		return
	}
	path := os.Getenv(helperPathEnv)
	var err error
	switch mode {
	case "recv-udp":
		err = helperRecvUDP(path)
	case "connect":
		err = helperConnect(path)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
		os.Exit(2)
	}
	os.Exit(0)
}

// helperRecvUDP plays the worker: it receives a media socket, reads one
// datagram from it and sends the payload back as an acknowledgement.
func helperRecvUDP(path string) error {
	c, err := Dial(path)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	items, err := c.Recv()
	if err != nil {
		return err
	}
	if len(items) != 1 || items[0].FD == NoFD {
		CloseItems(items)
		return fmt.Errorf("want one item with a descriptor, got %+v", items)
	}
	local, err := netip.ParseAddrPort(string(items[0].Meta))
	if err != nil {
		CloseItems(items)
		return err
	}
	s, err := mediasock.FromFD(items[0].FD, "udp", local)
	if err != nil {
		return err
	}
	pc, err := s.PacketConn()
	s.Close()
	if err != nil {
		return err
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		return err
	}
	return c.Send([]Item{{Meta: append([]byte("got "), buf[:n]...), FD: NoFD}})
}

// helperConnect connects and expects the server to hang up on it.
func helperConnect(path string) error {
	c, err := Dial(path)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	items, err := c.Recv()
	if errors.Is(err, io.EOF) {
		fmt.Println("server closed the connection")
		return nil
	}
	CloseItems(items)
	return fmt.Errorf("expected the server to close the connection, got %v, %v", items, err)
}

// helperCmd prepares the test binary (bin) as a helper process.
func helperCmd(ctx context.Context, bin, mode, path string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestHelperProcess$")
	// A race-enabled child would otherwise sleep a second at exit.
	cmd.Env = append(os.Environ(), helperModeEnv+"="+mode, helperPathEnv+"="+path, "GORACE=atexit_sleep_ms=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

// TestPassSocketToProcess passes a bound UDP socket to a separate process,
// which reads a datagram sent to the socket's address, while this process
// keeps its own copy.
func TestPassSocketToProcess(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := Listen(filepath.Join(t.TempDir(), "portd.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd, out := helperCmd(ctx, os.Args[0], "recv-udp", ln.Path())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	ln.SetDeadline(time.Now().Add(20 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if int(c.Peer().Pid) != cmd.Process.Pid {
		t.Errorf("peer pid %d, child pid %d", c.Peer().Pid, cmd.Process.Pid)
	}

	s := bindMedia(t)
	dup, err := s.Dup()
	if err != nil {
		t.Fatal(err)
	}
	err = c.Send([]Item{{Meta: []byte(s.Local().String()), FD: dup}})
	closeFDs([]int{dup}) // the sender's duplicate is no longer needed once sent
	if err != nil {
		t.Fatal(err)
	}

	cli, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.Local()))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Write([]byte("rtp payload")); err != nil {
		t.Fatal(err)
	}

	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	items, err := c.Recv()
	if err != nil {
		t.Fatalf("ack from child: %v\nchild output:\n%s", err, out)
	}
	if len(items) != 1 || items[0].FD != NoFD || string(items[0].Meta) != "got rtp payload" {
		CloseItems(items)
		t.Fatalf("ack = %+v", items)
	}
	waited = true
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}

	// This process still holds the socket: the port stays bound.
	if s2, err := mediasock.Bind("udp", s.Local(), mediasock.Options{}); err == nil {
		s2.Close()
		t.Error("port released although portd's copy is open")
	}
}

// TestRejectOtherUID runs the helper as nobody (uid 65534) against a
// listener that allows only root: the server must reject it with a clear
// error, and the client sees the connection closed.
func TestRejectOtherUID(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.CheckNoFDLeak(t)
	// The child must be able to reach the binary and the socket: a private
	// world-traversable directory with a copy of the test binary.
	dir, err := os.MkdirTemp("", "fdpass-uid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "fdpass.test")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}

	policies := []struct {
		name   string
		policy Policy
	}{
		{"default same uid", nil},
		{"root only", AllowUIDs(0)},
	}
	for _, p := range policies {
		t.Run(p.name, func(t *testing.T) {
			path := filepath.Join(dir, "portd.sock")
			ln, err := Listen(path, p.policy)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			// Only in this test: let another user connect, so that the
			// credential check is what stops it.
			if err := os.Chmod(path, 0o666); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd, out := helperCmd(ctx, bin, "connect", path)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			ln.SetDeadline(time.Now().Add(20 * time.Second))
			c, aerr := ln.Accept()
			if aerr == nil {
				c.Close()
			}
			werr := cmd.Wait()
			if aerr == nil {
				t.Fatal("server accepted a peer running as uid 65534")
			}
			if !errors.Is(aerr, ErrPeerRejected) || !strings.Contains(aerr.Error(), "uid 65534") {
				t.Fatalf("Accept = %v, want ErrPeerRejected naming uid 65534\nchild output:\n%s", aerr, out)
			}
			t.Log(aerr)
			if werr != nil || !strings.Contains(out.String(), "server closed the connection") {
				t.Errorf("child: %v\n%s", werr, out)
			}

			// The listener still serves allowed peers.
			ok, err := Dial(path)
			if err != nil {
				t.Fatal(err)
			}
			defer ok.Close()
			sc, err := ln.Accept()
			if err != nil {
				t.Fatalf("Accept of an allowed peer after a rejection: %v", err)
			}
			sc.Close()
		})
	}
}
