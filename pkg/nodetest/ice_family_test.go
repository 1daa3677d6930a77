package nodetest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestICEOtherFamily: on an interface with an IPv4 and an IPv6 address
// rtpkit's ICE candidates name both, and a party that has only IPv6 (as
// the trickle-ICE placeholder in its SDP says nothing of where it is)
// reaches the call over rtpkit's IPv6 candidate: its nominating check
// there, built with pion/stun, is answered from that socket, and RTP
// flows both ways between it and a plain IPv4 party, out of rtpkit's IPv6
// socket towards it.
func TestICEOtherFamily(t *testing.T) {
	a, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skip("no ::1 on this host:", err)
	}
	defer a.Close()
	_, c, _ := testutil.StartLocalNode(t, 51800, 51899, "--delete-delay=0", "--interface=::1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := testutil.ListenUDP(t)
	aAddr := a.LocalAddr().(*net.UDPAddr).AddrPort()
	const ufrag, pwd = "v6pa", "v6partypassword012345678"
	offer := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"+
		"a=rtcp-mux\r\na=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle\r\n"+
		"a=candidate:1 1 UDP 2130706431 ::1 %d typ host\r\n", ufrag, pwd, aAddr.Port())
	toB := testutil.NGOK(t, ctx, c, ngDict("offer", "ice-v6", "A", "", offer))
	toA := testutil.NGOK(t, ctx, c, ngDict("answer", "ice-v6", "A", "B", testutil.AudioSDP(b)))
	m := regexp.MustCompile(`a=ice-ufrag:(\S+)\r\na=ice-pwd:(\S+)\r\n(?s:.*)a=candidate:\S+ 1 UDP 2130706175 ::1 (\d+) typ host`).FindStringSubmatch(toA)
	if m == nil || !regexp.MustCompile(`c=IN IP4 127\.0\.0\.1`).MatchString(toA) {
		t.Fatalf("no IPv6 candidate beside the IPv4 address in the answer to A:\n%s", toA)
	}
	port, _ := strconv.Atoi(m[3])
	cand := netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port))

	// A nominates rtpkit's IPv6 candidate (A offered: A controls).
	check, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(m[1]+":"+ufrag),
		stun.RawAttribute{Type: stun.AttrICEControlling, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		stun.RawAttribute{Type: stun.AttrPriority, Value: []byte{0x6e, 0, 0, 0}},
		stun.RawAttribute{Type: stun.AttrUseCandidate},
		stun.NewShortTermIntegrity(m[2]), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	answered := false
	for i := 0; i < 50 && !answered; i++ {
		if _, err := a.WriteToUDPAddrPort(check.Raw, cand); err != nil {
			t.Fatal(err)
		}
		_ = a.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for {
			n, from, err := a.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			r := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if r.Decode() == nil && r.Type == stun.BindingSuccess && r.TransactionID == check.TransactionID {
				if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != cand {
					t.Fatalf("the check at %s was answered from %s", cand, from)
				}
				if stun.NewShortTermIntegrity(m[2]).Check(r) != nil {
					t.Fatal("the answer's integrity does not hold")
				}
				answered = true
				break
			}
		}
	}
	if !answered {
		t.Fatal("rtpkit did not answer the check at its IPv6 candidate")
	}

	// Media both ways over the IPv6 pair.
	toBAddr := testutil.SDPMediaAddr(t, toB)
	for seq := uint16(1); seq <= 3; seq++ {
		want := testutil.RTPPacket(0xB6, seq, "to the IPv6 party")
		if _, err := b.WriteToUDP(want, toBAddr); err != nil {
			t.Fatal(err)
		}
		if got, from := readRTP(t, a, buf); got != string(want) || from != cand {
			t.Fatalf("B→A packet %d: %x from %s, want %x from %s", seq, got, from, want, cand)
		}
		want = testutil.RTPPacket(0xA6, seq, "from the IPv6 party")
		if _, err := a.WriteToUDPAddrPort(want, cand); err != nil {
			t.Fatal(err)
		}
		_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := b.ReadFromUDP(buf)
		if err != nil || string(buf[:n]) != string(want) {
			t.Fatalf("A→B packet %d: %x (%v)", seq, buf[:n], err)
		}
	}
}

// readRTP reads the next non-STUN packet at c within 2 s.
func readRTP(t *testing.T, c *net.UDPConn, buf []byte) (string, netip.AddrPort) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		_ = c.SetReadDeadline(deadline)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no packet: %v", err)
		}
		if stun.IsMessage(buf[:n]) {
			continue // rtpkit's own checks or consent
		}
		return string(buf[:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	}
}
