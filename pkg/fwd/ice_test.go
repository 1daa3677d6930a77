package fwd

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/rtpkit/rtpkit/pkg/icecheck"
)

// stunRequest is a connectivity check as the browser's agent sends it to
// our candidate: USERNAME "ours:theirs", integrity with our password.
func stunRequest(t testing.TB, user, pwd string, nominate bool) *stun.Message {
	t.Helper()
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(user)}
	if nominate {
		setters = append(setters, stun.RawAttribute{Type: stun.AttrUseCandidate})
	}
	setters = append(setters, stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// stunResponse reads the answer to req at c (media held for c's party
// may come first: it is skipped).
func stunResponse(t testing.TB, c *net.UDPConn, req *stun.Message) *stun.Message {
	t.Helper()
	m, _ := stunResponseFrom(t, c, req)
	return m
}

// TestICEChecks: checks on a stream with ICE credentials are answered on
// its socket (not forwarded to the peer): a valid one with a success that
// names the sender's address, a forged one with 401 and no effect; the
// pair the party nominates from a new address becomes its endpoint, and
// media for the party goes there; before that, nothing is sent to the
// party, not even to its signalled address (RFC 8445 §12).
func TestICEChecks(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	creds := icecheck.Creds{LocalUfrag: "rtpk", LocalPwd: "0123456789abcdefghijklmn", RemoteUfrag: "brws"}
	c.set(t, e, "ice", 1, 2, Stream{ICE: creds}, Stream{})

	req := stunRequest(t, "rtpk:brws", creds.LocalPwd, false)
	send(t, c.A, c.paA, req.Raw)
	resp := stunResponse(t, c.A, req)
	var xa stun.XORMappedAddress
	if resp.Type != stun.BindingSuccess || stun.NewShortTermIntegrity(creds.LocalPwd).Check(resp) != nil || xa.GetFrom(resp) != nil ||
		xa.Port != int(addrOf(c.A).Port()) {
		t.Fatalf("answer %v, mapped %v", resp.Type, xa)
	}
	expectNothing(t, c.B, 50*time.Millisecond) // not forwarded

	// A forged nomination from a stranger: 401, and the endpoint stays.
	stranger := party(t)
	forged := stunRequest(t, "rtpk:brws", "not the password 0123456", true)
	send(t, stranger, c.paA, forged.Raw)
	if r := stunResponse(t, stranger, forged); r.Type != stun.BindingError {
		t.Fatalf("forged check answered %v", r.Type)
	}
	send(t, c.B, c.pbA, rtpPacket(1, 0xB, []byte("to A")))
	expectNothing(t, c.A, 200*time.Millisecond)

	// The party nominates a pair from another of its candidates.
	other := party(t)
	nom := stunRequest(t, "rtpk:brws", creds.LocalPwd, true)
	send(t, other, c.paA, nom.Raw)
	if r := stunResponse(t, other, nom); r.Type != stun.BindingSuccess {
		t.Fatalf("nomination answered %v", r.Type)
	}
	eventually(t, "the nominated pair as endpoint", func() bool { return stats(t, e, 1).Endpoint == addrOf(other) })
	send(t, c.B, c.pbA, rtpPacket(2, 0xB, []byte("to the nominated pair")))
	// The packet held before the nomination may come first.
	buf := make([]byte, 2048)
	for i := 0; ; i++ {
		_ = other.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := other.ReadFromUDPAddrPort(buf)
		if err != nil || i == 2 {
			t.Fatalf("media for the nominated pair: %v", err)
		}
		if from == c.paA && string(buf[:n]) == string(rtpPacket(2, 0xB, []byte("to the nominated pair"))) {
			break
		}
	}
	if s := stats(t, e, 1); s.Packets != 0 || s.ICEDropped != 0 {
		t.Errorf("checks counted as media (%d packets) or dropped (%d)", s.Packets, s.ICEDropped)
	}
}

// TestSTUNWithoutICEForwarded: a stream without ICE credentials forwards
// STUN like any packet (ICE passed through end to end).
func TestSTUNWithoutICEForwarded(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	c.set(t, e, "noice", 1, 2, Stream{}, Stream{})
	req := stunRequest(t, "a:b", "password-0123456789abcd", false)
	send(t, c.A, c.paA, req.Raw)
	expect(t, c.B, req.Raw, c.pbA)
}

// peerAnswers plays the party's full ICE agent for one check of ours:
// it reads the check at c, verifies it with the party's credentials
// (theirs), answers it, and returns what the check said.
func peerAnswers(t *testing.T, c *net.UDPConn, theirs icecheck.Creds) icecheck.Check {
	t.Helper()
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no check from the proxy: %v", err)
	}
	resp, chk, err := icecheck.Answer(buf[:n], addrOf(c), theirs)
	if err != nil {
		t.Fatalf("the proxy's check does not verify: %v", err)
	}
	if _, err := c.WriteToUDPAddrPort(resp, from); err != nil {
		t.Fatal(err)
	}
	return chk
}

// TestICEAgentControlling: as the controlling agent, the stream checks
// the party's signalled address under the party's credentials, then
// nominates the pair that answered with a check that carries
// USE-CANDIDATE (regular nomination); the answer to that one makes the
// pair the endpoint.
func TestICEAgentControlling(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	ours := icecheck.Creds{LocalUfrag: "rtpk", LocalPwd: "0123456789abcdefghijklmn", RemoteUfrag: "peer", RemotePwd: "peerpassword0123456789ab", Controlling: true}
	theirs := icecheck.Creds{LocalUfrag: "peer", LocalPwd: ours.RemotePwd, RemoteUfrag: "rtpk"}
	other := party(t) // the party's candidate, signalled
	c.set(t, e, "icectl", 1, 2, Stream{ICE: ours, Signalled: addrOf(other)}, Stream{})
	chk := peerAnswers(t, other, theirs)
	if chk.UseCandidate || !chk.Controlling {
		t.Fatalf("our first check as the controlling agent: %+v", chk)
	}
	if s := stats(t, e, 1); s.Confirmed {
		t.Fatal("a pair confirmed before it was nominated")
	}
	// A check of the first round may still be on its way; the
	// nomination comes within a few.
	for i := 0; ; i++ {
		chk = peerAnswers(t, other, theirs)
		if chk.UseCandidate && chk.Controlling {
			break
		}
		if i == 4 {
			t.Fatalf("our checks after the pair succeeded: %+v, want a nomination", chk)
		}
	}
	eventually(t, "the nominated pair as endpoint", func() bool {
		s := stats(t, e, 1)
		return s.Endpoint == addrOf(other) && s.Confirmed
	})
	send(t, c.B, c.pbA, rtpPacket(1, 0xB, []byte("to the nominated pair")))
	expect(t, other, rtpPacket(1, 0xB, []byte("to the nominated pair")), c.paA)
}

// TestICEAgentControlled: as the controlled agent, a valid check from the
// party is answered and followed by a triggered check of ours (without
// USE-CANDIDATE) to where it came from; the party's nomination then sets
// the endpoint.
func TestICEAgentControlled(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	ours := icecheck.Creds{LocalUfrag: "rtpk", LocalPwd: "0123456789abcdefghijklmn", RemoteUfrag: "peer", RemotePwd: "peerpassword0123456789ab"}
	theirs := icecheck.Creds{LocalUfrag: "peer", LocalPwd: ours.RemotePwd, RemoteUfrag: "rtpk", RemotePwd: ours.LocalPwd, Controlling: true}
	// Signalled nowhere useful: the party's real candidate is
	// peer-reflexive (it appears only in its checks).
	c.set(t, e, "icectd", 1, 2, Stream{ICE: ours, Signalled: netip.MustParseAddrPort("127.0.0.1:9")}, Stream{})
	prflx := party(t)
	req, _, err := icecheck.Request(theirs, 7, false)
	if err != nil {
		t.Fatal(err)
	}
	send(t, prflx, c.paA, req)
	// Our answer, then our triggered check (in either order with the
	// periodic ones to the signalled address, which go elsewhere).
	sawAnswer, sawCheck := false, false
	buf := make([]byte, 1500)
	for !(sawAnswer && sawCheck) {
		_ = prflx.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := prflx.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("answer %v, triggered check %v: %v", sawAnswer, sawCheck, err)
		}
		if !icecheck.IsRequest(buf[:n]) {
			sawAnswer = true
			continue
		}
		resp, chk, err := icecheck.Answer(buf[:n], addrOf(prflx), icecheck.Creds{LocalUfrag: "peer", LocalPwd: theirs.LocalPwd, RemoteUfrag: "rtpk"})
		if err != nil || chk.UseCandidate || chk.Controlling {
			t.Fatalf("our triggered check: %+v %v", chk, err)
		}
		_, _ = prflx.WriteToUDPAddrPort(resp, from)
		sawCheck = true
	}
	nom, _, _ := icecheck.Request(theirs, 7, true)
	send(t, prflx, c.paA, nom)
	eventually(t, "the nominated pair as endpoint", func() bool { return stats(t, e, 1).Endpoint == addrOf(prflx) })
}

// TestICEAgentLite: an ICE-lite agent answers checks and takes the
// party's nomination, and sends no checks of its own, periodic or
// triggered.
func TestICEAgentLite(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	ours := icecheck.Creds{LocalUfrag: "rtpk", LocalPwd: "0123456789abcdefghijklmn", RemoteUfrag: "peer", RemotePwd: "peerpassword0123456789ab", Lite: true}
	theirs := icecheck.Creds{LocalUfrag: "peer", LocalPwd: ours.RemotePwd, RemoteUfrag: "rtpk", RemotePwd: ours.LocalPwd, Controlling: true}
	c.set(t, e, "icelite", 1, 2, Stream{ICE: ours}, Stream{})
	expectNothing(t, c.A, 300*time.Millisecond) // no periodic checks to the signalled address
	nom, _, _ := icecheck.Request(theirs, 7, true)
	send(t, c.A, c.paA, nom)
	buf := make([]byte, 1500)
	_ = c.A.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := c.A.ReadFromUDP(buf)
	if err != nil || icecheck.IsRequest(buf[:n]) {
		t.Fatalf("the answer to the party's check: %x %v", buf[:n], err)
	}
	expectNothing(t, c.A, 300*time.Millisecond) // no triggered check either
	eventually(t, "the nominated pair as endpoint", func() bool { return stats(t, e, 1).Confirmed })
}

// TestICEConsentLapse: once the party stops answering the consent checks
// on the nominated pair for consentLapse, nothing more is sent to it
// (RFC 7675), and the agent checks again from the start.
func TestICEConsentLapse(t *testing.T) {
	old := consentLapse
	consentLapse = 600 * time.Millisecond
	t.Cleanup(func() { consentLapse = old }) // after the engine's own cleanup
	e := newTestEngine(t, Config{})
	c := newCall(t)
	ours := icecheck.Creds{LocalUfrag: "rtpk", LocalPwd: "0123456789abcdefghijklmn", RemoteUfrag: "peer", RemotePwd: "peerpassword0123456789ab", Controlling: true}
	theirs := icecheck.Creds{LocalUfrag: "peer", LocalPwd: ours.RemotePwd, RemoteUfrag: "rtpk"}
	other := party(t)
	c.set(t, e, "consent", 1, 2, Stream{ICE: ours, Signalled: addrOf(other)}, Stream{})
	for i := 0; ; i++ { // answer until the pair is nominated
		if chk := peerAnswers(t, other, theirs); chk.UseCandidate {
			break
		}
		if i == 5 {
			t.Fatal("no nomination")
		}
	}
	eventually(t, "the nominated pair as endpoint", func() bool { return stats(t, e, 1).Confirmed })
	// The party answers nothing more.
	eventually(t, "the endpoint gone after the consent lapsed", func() bool { return !stats(t, e, 1).Endpoint.IsValid() })
	send(t, c.B, c.pbA, rtpPacket(1, 0xB, []byte("after the lapse")))
	deadline := time.Now().Add(300 * time.Millisecond)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		_ = other.SetReadDeadline(deadline)
		n, _, err := other.ReadFromUDP(buf)
		if err != nil {
			break
		}
		if !icecheck.IsSTUN(buf[:n]) {
			t.Fatalf("media reached the party after its consent lapsed: %x", buf[:n])
		}
	}
}

// TestICEAgentChecksCandidates: the agent checks the party's candidates
// from its SDP (Stream.ICECandidates), not only its signalled address (a
// trickle ICE party signals the 0.0.0.0:9 placeholder), and nominates the
// one that answers.
func TestICEAgentChecksCandidates(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	ours := icecheck.Creds{LocalUfrag: "rtpk", LocalPwd: "0123456789abcdefghijklmn", RemoteUfrag: "peer", RemotePwd: "peerpassword0123456789ab", Controlling: true}
	theirs := icecheck.Creds{LocalUfrag: "peer", LocalPwd: ours.RemotePwd, RemoteUfrag: "rtpk"}
	cand := party(t)
	s := Stream{ICE: ours, Signalled: netip.MustParseAddrPort("0.0.0.0:9")}
	s.ICECandidates[0] = netip.MustParseAddrPort("127.0.0.1:9") // nobody there, checked in vain
	s.ICECandidates[1] = addrOf(cand)
	c.set(t, e, "cands", 1, 2, s, Stream{})
	for i := 0; ; i++ {
		if chk := peerAnswers(t, cand, theirs); chk.UseCandidate {
			break
		}
		if i == 5 {
			t.Fatal("no nomination of the candidate")
		}
	}
	eventually(t, "the candidate as endpoint", func() bool { return stats(t, e, 1).Endpoint == addrOf(cand) })
}
