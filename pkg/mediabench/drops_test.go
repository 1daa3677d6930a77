package mediabench

import (
	"net"
	"testing"
	"time"
)

func TestParseUDPLine(t *testing.T) {
	for _, tt := range []struct {
		line  string
		port  int
		inode string
		drops uint64
		ok    bool
	}{
		{"  372: 0100007F:9C40 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123456 2 0000000000000000 17", 40000, "123456", 17, true},
		{"   12: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0000000000000000 0", 8080, "99", 0, true},
		{"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops", 0, "", 0, false},
		{"1: 0100007F 00000000:0000", 0, "", 0, false},
	} {
		port, inode, drops, ok := parseUDPLine(tt.line)
		if port != tt.port || inode != tt.inode || drops != tt.drops || ok != tt.ok {
			t.Errorf("%q: got %d %q %d %v, want %d %q %d %v", tt.line, port, inode, drops, ok, tt.port, tt.inode, tt.drops, tt.ok)
		}
	}
}

// TestDropsCounted: datagrams sent to a socket that never reads, past its
// receive buffer, show up as that socket's drops, attributed to the load
// generator when its port is one of the load's, to the proxy otherwise.
func TestDropsCounted(t *testing.T) {
	rcv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	if err := rcv.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	snd, err := net.DialUDP("udp4", nil, rcv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	before, err := readDrops()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	for range 200 {
		_, _ = snd.Write(buf)
	}
	time.Sleep(50 * time.Millisecond)
	after, err := readDrops()
	if err != nil {
		t.Fatal(err)
	}
	port := rcv.LocalAddr().(*net.UDPAddr).Port
	asLoad := dropsBetween(before, after, map[int]bool{port: true})
	asProxy := dropsBetween(before, after, nil)
	if asLoad.LoadSockets == 0 || asProxy.OtherSockets < asLoad.LoadSockets {
		t.Errorf("200 datagrams of 1000 bytes into a 4 KiB buffer: drops as load %+v, as proxy %+v", asLoad, asProxy)
	}
	if asLoad.RcvbufErrors == 0 {
		t.Errorf("UDP receive buffer errors not counted: %+v", asLoad)
	}
}
