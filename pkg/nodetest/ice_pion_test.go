package nodetest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// pionAgent is an ICE agent we did not write (pion/ice), as a WebRTC
// endpoint's: host candidates on 127.0.0.1, one component.
type pionAgent struct {
	a     *ice.Agent
	cands []ice.Candidate
}

func newPionAgent(t *testing.T) *pionAgent {
	t.Helper()
	a, err := ice.NewAgentWithOptions(
		ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4}),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost}),
		ice.WithIncludeLoopback(),
		ice.WithIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) }),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	p := &pionAgent{a: a}
	done := make(chan struct{})
	if err := a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			close(done)
			return
		}
		p.cands = append(p.cands, c)
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.GatherCandidates(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pion/ice gathered no candidates")
	}
	if len(p.cands) == 0 {
		t.Fatal("pion/ice has no loopback candidate")
	}
	return p
}

// sdp is the agent's SDP: one audio stream at its first candidate, with
// its credentials and candidates.
func (p *pionAgent) sdp(t *testing.T) string {
	t.Helper()
	ufrag, pwd, err := p.a.GetLocalUserCredentials()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", p.cands[0].Port())
	fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", ufrag, pwd)
	for _, c := range p.cands {
		fmt.Fprintf(&b, "a=%s\r\n", c.Marshal())
	}
	return b.String()
}

// remote reads rtpkit's ICE lines from an SDP into the agent and returns
// rtpkit's credentials.
func (p *pionAgent) remote(t *testing.T, body string) (ufrag, pwd string) {
	t.Helper()
	n := 0
	for _, ln := range strings.Split(body, "\r\n") {
		switch {
		case strings.HasPrefix(ln, "a=ice-ufrag:"):
			ufrag = strings.TrimPrefix(ln, "a=ice-ufrag:")
		case strings.HasPrefix(ln, "a=ice-pwd:"):
			pwd = strings.TrimPrefix(ln, "a=ice-pwd:")
		case strings.HasPrefix(ln, "a=candidate:"):
			c, err := ice.UnmarshalCandidate(strings.TrimPrefix(ln, "a="))
			if err != nil {
				t.Fatalf("pion/ice cannot read rtpkit's %q: %v", ln, err)
			}
			if c.Component() != 1 {
				continue // pion/ice's agent has one component (rtcp-mux)
			}
			if err := p.a.AddRemoteCandidate(c); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if ufrag == "" || pwd == "" || n == 0 {
		t.Fatalf("no ICE credentials or candidates in rtpkit's SDP:\n%s", body)
	}
	return ufrag, pwd
}

// TestICEWithPion: an ICE agent we did not write (pion/ice) reaches a
// plain RTP party through rtpkit, with rtpkit as the controlled agent
// (the ICE party offers) and as the controlling one (the plain party
// offers with ICE=force): the check, the nomination and then RTP both
// ways over the selected pair.
func TestICEWithPion(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 51000, 51099, "--delete-delay=0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("ICE party offers, rtpkit controlled", func(t *testing.T) {
		p := newPionAgent(t)
		b := testutil.ListenUDP(t)
		toB := testutil.NGOK(t, ctx, c, ngDict("offer", "ice-pion-1", "A", "", p.sdp(t)))
		toA := testutil.NGOK(t, ctx, c, ngDict("answer", "ice-pion-1", "A", "B", testutil.AudioSDP(b)))
		ufrag, pwd := p.remote(t, toA)
		conn, err := p.a.Dial(ctx, ufrag, pwd) // the offerer controls
		if err != nil {
			t.Fatalf("pion/ice did not connect to rtpkit: %v", err)
		}
		iceMedia(t, conn, b, testutil.SDPMediaAddr(t, toB))
	})

	t.Run("plain party offers with ICE=force, rtpkit controlling", func(t *testing.T) {
		p := newPionAgent(t)
		b := testutil.ListenUDP(t)
		toA := testutil.NGOK(t, ctx, c, ngDict("offer", "ice-pion-2", "B", "", testutil.AudioSDP(b),
			bencode.Pair{Key: "ICE", Value: bencode.Str("force")}))
		ufrag, pwd := p.remote(t, toA)
		toB := testutil.NGOK(t, ctx, c, ngDict("answer", "ice-pion-2", "B", "A", p.sdp(t)))
		if strings.Contains(toB, "a=ice-") || strings.Contains(toB, "a=candidate") {
			t.Fatalf("the plain party got ICE lines:\n%s", toB)
		}
		conn, err := p.a.Accept(ctx, ufrag, pwd) // the answerer is controlled
		if err != nil {
			t.Fatalf("pion/ice did not connect to rtpkit: %v", err)
		}
		iceMedia(t, conn, b, testutil.SDPMediaAddr(t, toB))
	})
}

// TestICELiteWithPion: with ICE-lite=forward rtpkit is an ICE-lite agent
// towards the receiver of the offer (a=ice-lite, no checks of its own);
// pion/ice, a full agent, controls, checks and nominates, and RTP flows.
func TestICELiteWithPion(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 51300, 51399, "--delete-delay=0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := newPionAgent(t)
	b := testutil.ListenUDP(t)
	toA := testutil.NGOK(t, ctx, c, ngDict("offer", "ice-lite-1", "B", "", testutil.AudioSDP(b),
		bencode.Pair{Key: "ICE", Value: bencode.Str("force")}, bencode.Pair{Key: "ICE-lite", Value: bencode.Str("forward")}))
	if !strings.Contains(toA, "\r\na=ice-lite\r\nm=") {
		t.Fatalf("no a=ice-lite before the media:\n%s", toA)
	}
	ufrag, pwd := p.remote(t, toA)
	toB := testutil.NGOK(t, ctx, c, ngDict("answer", "ice-lite-1", "B", "A", p.sdp(t)))
	conn, err := p.a.Dial(ctx, ufrag, pwd) // facing a lite agent, pion controls
	if err != nil {
		t.Fatalf("pion/ice did not connect to rtpkit as ICE-lite: %v", err)
	}
	iceMedia(t, conn, b, testutil.SDPMediaAddr(t, toB))
}

// iceMedia sends RTP from the ICE party over its selected pair to the
// plain party b, and back from b to rtpkit's address for it (toB).
func iceMedia(t *testing.T, conn *ice.Conn, b *net.UDPConn, toB *net.UDPAddr) {
	t.Helper()
	buf := make([]byte, 1500)
	for seq := uint16(1); seq <= 3; seq++ {
		want := testutil.RTPPacket(0xA1, seq, "from the ICE party")
		if _, err := conn.Write(want); err != nil {
			t.Fatal(err)
		}
		_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := b.ReadFromUDP(buf)
		if err != nil || string(buf[:n]) != string(want) {
			t.Fatalf("A→B packet %d: %x (%v)", seq, buf[:n], err)
		}
		want = testutil.RTPPacket(0xB2, seq, "from the plain party")
		if _, err := b.WriteToUDP(want, toB); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err = conn.Read(buf)
		if err != nil || string(buf[:n]) != string(want) {
			t.Fatalf("B→A packet %d: %x (%v)", seq, buf[:n], err)
		}
	}
}
