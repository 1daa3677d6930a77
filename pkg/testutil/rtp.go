package testutil

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/rtppacket"
)

// RTPPacket builds an RTP packet with [rtppacket]: version 2, payload type
// 0, timestamp seq×160, the given SSRC and payload.
func RTPPacket(ssrc uint32, seq uint16, payload string) []byte {
	return rtppacket.RTP{Seq: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc}.Packet([]byte(payload))
}

// ListenUDP is a UDP socket on 127.0.0.1 with a port the kernel picks,
// closed at cleanup.
func ListenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Relay sends one RTP packet (SSRC ssrc, sequence seq) from src to dst
// until it arrives at rcv byte for byte, retrying up to 100 times every
// 100 ms (the proxy may not have installed the call yet); it returns the
// address the packet came from.
func Relay(t testing.TB, src *net.UDPConn, dst *net.UDPAddr, rcv *net.UDPConn, ssrc uint32, seq uint16) netip.AddrPort {
	t.Helper()
	want := RTPPacket(ssrc, seq, "relay-"+strconv.Itoa(int(seq)))
	buf := make([]byte, 2048)
	for range 100 {
		if _, err := src.WriteToUDP(want, dst); err != nil {
			t.Fatal(err)
		}
		_ = rcv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, from, err := rcv.ReadFromUDPAddrPort(buf)
		if err == nil && string(buf[:n]) == string(want) {
			return from
		}
	}
	t.Fatalf("packet %d from %s to %s not forwarded to %s", seq, src.LocalAddr(), dst, rcv.LocalAddr())
	return netip.AddrPort{}
}
