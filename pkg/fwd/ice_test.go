package fwd

import (
	"net"
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

// stunResponse reads the answer to req at c.
func stunResponse(t testing.TB, c *net.UDPConn, req *stun.Message) *stun.Message {
	t.Helper()
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no answer to the check: %v", err)
	}
	m := &stun.Message{Raw: buf[:n]}
	if err := m.Decode(); err != nil || m.TransactionID != req.TransactionID {
		t.Fatalf("answer %x: %v", buf[:n], err)
	}
	return m
}

// TestICEChecks: checks on a stream with ICE credentials are answered on
// its socket (not forwarded to the peer): a valid one with a success that
// names the sender's address, a forged one with 401 and no effect; the
// pair the party nominates from a new address becomes its endpoint, and
// media for the party goes there. Plain RTP keeps flowing meanwhile.
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
	expect(t, c.A, rtpPacket(1, 0xB, []byte("to A")), c.paA)

	// The party nominates a pair from another of its candidates.
	other := party(t)
	nom := stunRequest(t, "rtpk:brws", creds.LocalPwd, true)
	send(t, other, c.paA, nom.Raw)
	if r := stunResponse(t, other, nom); r.Type != stun.BindingSuccess {
		t.Fatalf("nomination answered %v", r.Type)
	}
	eventually(t, "the nominated pair as endpoint", func() bool { return stats(t, e, 1).Endpoint == addrOf(other) })
	send(t, c.B, c.pbA, rtpPacket(2, 0xB, []byte("to the nominated pair")))
	expect(t, other, rtpPacket(2, 0xB, []byte("to the nominated pair")), c.paA)
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
