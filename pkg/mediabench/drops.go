package mediabench

// Where lost packets went: the kernel's per-socket drop counters (a full
// receive queue) of every UDP socket of the network namespace, split into
// the load generator's own sockets and all the others (the proxy's), and
// the namespace's UDP buffer error counters. They work for any proxy,
// since they are read from /proc, not asked of the proxy.

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Drops are the kernel's counts of dropped UDP datagrams over a run.
type Drops struct {
	// LoadSockets: datagrams dropped at the load generator's sockets
	// (their receive queues were full): lost by the measurement, not by
	// the proxy.
	LoadSockets uint64 `json:"load_sockets"`
	// OtherSockets: datagrams dropped at every other UDP socket of the
	// namespace, the proxy's (receive queue full before it read them).
	OtherSockets uint64 `json:"other_sockets"`
	// RcvbufErrors and SndbufErrors are the namespace's UDP counters
	// (/proc/net/snmp and snmp6): receive queues full, and sends refused
	// for a full send buffer.
	RcvbufErrors uint64 `json:"rcvbuf_errors"`
	SndbufErrors uint64 `json:"sndbuf_errors"`
}

// dropSnapshot is the counters at one moment.
type dropSnapshot struct {
	bySocket map[string]uint64 // "port/inode": drops
	rcvbuf   uint64
	sndbuf   uint64
}

// readDrops reads the counters now.
func readDrops() (dropSnapshot, error) {
	s := dropSnapshot{bySocket: map[string]uint64{}}
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		if err := readSocketDrops(f, s.bySocket); err != nil && !os.IsNotExist(err) {
			return s, err
		}
	}
	for _, f := range []struct{ name, prefix string }{{"/proc/net/snmp", "Udp:"}, {"/proc/net/snmp6", "Udp6"}} {
		rcv, snd, err := readUDPErrors(f.name, f.prefix)
		if err != nil && !os.IsNotExist(err) {
			return s, err
		}
		s.rcvbuf += rcv
		s.sndbuf += snd
	}
	return s, nil
}

// readSocketDrops adds each socket's drop count of a /proc/net/udp file,
// keyed by local port and inode (a socket closed and another opened on
// the same port are told apart).
func readSocketDrops(name string, into map[string]uint64) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		port, inode, drops, ok := parseUDPLine(sc.Text())
		if ok {
			into[strconv.Itoa(port)+"/"+inode] = drops
		}
	}
	return sc.Err()
}

// parseUDPLine reads one socket line of /proc/net/udp: "sl local rem st
// tx:rx tr:when retr uid timeout inode ref pointer drops".
func parseUDPLine(line string) (port int, inode string, drops uint64, ok bool) {
	f := strings.Fields(line)
	if len(f) < 13 {
		return 0, "", 0, false
	}
	_, hexPort, found := strings.Cut(f[1], ":")
	if !found {
		return 0, "", 0, false
	}
	p, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return 0, "", 0, false
	}
	d, err := strconv.ParseUint(f[len(f)-1], 10, 64)
	if err != nil {
		return 0, "", 0, false
	}
	return int(p), f[9], d, true
}

// readUDPErrors reads RcvbufErrors and SndbufErrors of the UDP (or UDP6)
// counters: /proc/net/snmp has a header line and a value line per
// protocol, /proc/net/snmp6 a "Udp6Name value" line per counter.
func readUDPErrors(name, prefix string) (rcvbuf, sndbuf uint64, err error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, 0, err
	}
	lines := strings.Split(string(b), "\n")
	if prefix == "Udp6" {
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) == 2 {
				v, _ := strconv.ParseUint(f[1], 10, 64)
				switch f[0] {
				case "Udp6RcvbufErrors":
					rcvbuf = v
				case "Udp6SndbufErrors":
					sndbuf = v
				}
			}
		}
		return rcvbuf, sndbuf, nil
	}
	var names []string
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		f := strings.Fields(l)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if i >= len(f) {
				break
			}
			v, _ := strconv.ParseUint(f[i], 10, 64)
			switch n {
			case "RcvbufErrors":
				rcvbuf = v
			case "SndbufErrors":
				sndbuf = v
			}
		}
		return rcvbuf, sndbuf, nil
	}
	return 0, 0, fmt.Errorf("%s: no %s counters", name, prefix)
}

// dropsBetween is what changed from a to b; load are the load
// generator's local ports.
func dropsBetween(a, b dropSnapshot, load map[int]bool) Drops {
	var d Drops
	for k, after := range b.bySocket {
		before := a.bySocket[k]
		if after <= before {
			continue
		}
		port, _ := strconv.Atoi(k[:strings.IndexByte(k, '/')])
		if load[port] {
			d.LoadSockets += after - before
		} else {
			d.OtherSockets += after - before
		}
	}
	if b.rcvbuf > a.rcvbuf {
		d.RcvbufErrors = b.rcvbuf - a.rcvbuf
	}
	if b.sndbuf > a.sndbuf {
		d.SndbufErrors = b.sndbuf - a.sndbuf
	}
	return d
}
