package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nsInode returns the inode of a namespace file such as /proc/self/ns/net.
func nsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}

func TestVethUDPExchange(t *testing.T) {
	RequireRoot(t)
	var names []string
	t.Run("exchange", func(t *testing.T) {
		a := NewNetNS(t, "rtpkit-a")
		b := NewNetNS(t, "rtpkit-b")
		names = []string{a.Name, b.Name}
		if !strings.HasPrefix(a.Name, "rtpkit-a-") || a.Name == b.Name {
			t.Fatalf("unexpected namespace names %q, %q", a.Name, b.Name)
		}
		Veth(t, a, "veth-a", b, "veth-b")
		AddAddr(t, a, "veth-a", "192.0.2.1/24")
		AddAddr(t, b, "veth-b", "192.0.2.2/24")
		AddAddr(t, a, "veth-a", "2001:db8:1::1/64")
		AddAddr(t, b, "veth-b", "2001:db8:1::2/64")
		// A route to a prefix behind b, through b's address.
		AddRoute(t, a, "198.51.100.0/24", "192.0.2.2")
		ReplaceRoute(t, a, "198.51.100.0/24", "192.0.2.2")
		AddAddr(t, b, "lo", "198.51.100.7/32")
		if out := a.Run(t, "ip", "route", "show", "198.51.100.0/24"); !strings.Contains(out, "via 192.0.2.2") {
			t.Fatalf("route not installed in %s:\n%s", a.Name, out)
		}

		for _, dst := range []string{"192.0.2.2:40000", "[2001:db8:1::2]:40000", "198.51.100.7:40001"} {
			t.Run(dst, func(t *testing.T) {
				exchange(t, a, b, netip.MustParseAddrPort(dst))
			})
		}
	})
	for _, name := range names {
		if _, err := os.Stat(netnsDir + "/" + name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still exists after cleanup (stat: %v)", name, err)
		}
		out, err := exec.Command("ip", "netns", "list").CombinedOutput()
		if err != nil {
			t.Fatalf("ip netns list: %v", err)
		}
		if strings.Contains(string(out), name) {
			t.Errorf("ip netns list still shows %s:\n%s", name, out)
		}
	}
}

// exchange sends a datagram from a to dst (an address in b) and a reply back.
func exchange(t *testing.T, a, b *NetNS, dst netip.AddrPort) {
	var srv *net.UDPConn
	if err := b.Do(func() error {
		var err error
		srv, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", b.Name, err)
	}
	defer srv.Close()
	var cli *net.UDPConn
	if err := a.Do(func() error {
		var err error
		cli, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatalf("dial from %s: %v", a.Name, err)
	}
	defer cli.Close()

	deadline := time.Now().Add(5 * time.Second)
	srv.SetDeadline(deadline)
	cli.SetDeadline(deadline)
	ping := []byte("ping " + dst.String())
	if _, err := cli.Write(ping); err != nil {
		t.Fatalf("send: %v", err)
	}
	buf := make([]byte, 1500)
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("receive in %s: %v", b.Name, err)
	}
	if !bytes.Equal(buf[:n], ping) {
		t.Fatalf("received %q, want %q", buf[:n], ping)
	}
	if _, err := srv.WriteToUDPAddrPort([]byte("pong"), from); err != nil {
		t.Fatalf("reply: %v", err)
	}
	n, err = cli.Read(buf)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("reply: got %q, %v", buf[:n], err)
	}
}

func TestDoRestoresNamespace(t *testing.T) {
	RequireRoot(t)
	ns := NewNetNS(t, "rtpkit-do")
	want, err := nsInode(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	host, err := nsInode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if want == host {
		t.Fatal("new namespace has the host namespace's inode")
	}
	for i := range 3 {
		if err := ns.Do(func() error {
			got, err := nsInode("/proc/thread-self/ns/net")
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("inside Do: netns inode %d, want %d", got, want)
			}
			return nil
		}); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	sentinel := errors.New("sentinel")
	if err := ns.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do error = %v, want the function's error", err)
	}
	if err := ns.Do(func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "panic: boom") {
		t.Errorf("Do with panic = %v, want panic error", err)
	}
	// No goroutine of the test is left inside the namespace.
	if got, err := nsInode("/proc/self/ns/net"); err != nil || got != host {
		t.Errorf("main thread netns inode %d (%v), want %d", got, err, host)
	}
}

func TestDummy(t *testing.T) {
	RequireRoot(t)
	ns := NewNetNS(t, "rtpkit-dummy")
	Dummy(t, ns, "media0")
	AddAddr(t, ns, "media0", "192.0.2.10/24")
	AddAddr(t, ns, "media0", "2001:db8::10/64")
	out := ns.Run(t, "ip", "addr", "show", "dev", "media0")
	for _, want := range []string{"192.0.2.10/24", "2001:db8::10/64"} {
		if !strings.Contains(out, want) {
			t.Errorf("media0 lacks %s:\n%s", want, out)
		}
	}
	DelAddr(t, ns, "media0", "192.0.2.10/24")
	if out := ns.Run(t, "ip", "addr", "show", "dev", "media0"); strings.Contains(out, "192.0.2.10/24") {
		t.Errorf("192.0.2.10/24 still on media0 after DelAddr:\n%s", out)
	}
	// The IPv6 address is usable at once (nodad): binding to it works.
	if err := ns.Do(func() error {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[2001:db8::10]:40000")))
		if err != nil {
			return err
		}
		return c.Close()
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCommand(t *testing.T) {
	RequireRoot(t)
	ns := NewNetNS(t, "rtpkit-cmd")
	cmd := ns.Command("ip", "-o", "link", "show")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	// A fresh namespace has only its loopback interface, which NewNetNS set up.
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "lo:") || !strings.Contains(lines[0], "UP") {
		t.Fatalf("links in fresh namespace:\n%s", out)
	}
}
