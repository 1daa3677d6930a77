package icecheck

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/stun/v3"
)

var creds = Creds{LocalUfrag: "rtpk", LocalPwd: "0123456789abcdefghijklmn", RemoteUfrag: "brws"}

// request builds a Binding request as a browser's ICE agent sends it.
func request(t testing.TB, user, pwd string, extra ...stun.Setter) *stun.Message {
	t.Helper()
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(user)}
	setters = append(setters, extra...)
	setters = append(setters, stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func decode(t *testing.T, b []byte) *stun.Message {
	t.Helper()
	m := &stun.Message{Raw: b}
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAnswer(t *testing.T) {
	src := netip.MustParseAddrPort("198.51.100.7:40000")
	prio := make([]byte, 4)
	prio[0], prio[3] = 0x6e, 0xff
	for _, tc := range []struct {
		name   string
		req    *stun.Message
		err    error
		code   stun.ErrorCode
		check  Check
		noResp bool
	}{
		{name: "check", req: request(t, "rtpk:brws", creds.LocalPwd, stun.RawAttribute{Type: stun.AttrPriority, Value: prio}),
			check: Check{Priority: 0x6e0000ff}},
		{name: "nomination", req: request(t, "rtpk:brws", creds.LocalPwd, stun.RawAttribute{Type: stun.AttrUseCandidate},
			stun.RawAttribute{Type: stun.AttrICEControlling, Value: make([]byte, 8)}),
			check: Check{UseCandidate: true, Controlling: true}},
		{name: "wrong password", req: request(t, "rtpk:brws", "another password 012345"), err: ErrUnauthorized, code: stun.CodeUnauthorized},
		{name: "wrong ufrag", req: request(t, "xxxx:brws", creds.LocalPwd), err: ErrUnauthorized, code: stun.CodeUnauthorized},
		{name: "wrong remote ufrag", req: request(t, "rtpk:evil", creds.LocalPwd), err: ErrUnauthorized, code: stun.CodeUnauthorized},
		{name: "no username", req: func() *stun.Message {
			m, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewShortTermIntegrity(creds.LocalPwd), stun.Fingerprint)
			return m
		}(), err: ErrUnauthorized, code: stun.CodeUnauthorized},
		{name: "a response", req: func() *stun.Message {
			m, _ := stun.Build(stun.TransactionID, stun.BindingSuccess, stun.Fingerprint)
			return m
		}(), err: ErrNotRequest, noResp: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !IsSTUN(tc.req.Raw) {
				t.Fatal("IsSTUN is false for a STUN message")
			}
			resp, chk, err := Answer(tc.req.Raw, src, creds)
			if err != tc.err {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.noResp {
				if resp != nil {
					t.Fatal("a response to what must get none")
				}
				return
			}
			m := decode(t, resp)
			if m.TransactionID != tc.req.TransactionID {
				t.Error("transaction id not echoed")
			}
			if err := stun.Fingerprint.Check(m); err != nil {
				t.Errorf("fingerprint: %v", err)
			}
			if tc.err != nil {
				var ec stun.ErrorCodeAttribute
				if m.Type != stun.BindingError || ec.GetFrom(m) != nil || ec.Code != tc.code {
					t.Fatalf("response %v %v, want error %d", m.Type, ec, tc.code)
				}
				return
			}
			if m.Type != stun.BindingSuccess {
				t.Fatalf("response type %v", m.Type)
			}
			if err := stun.NewShortTermIntegrity(creds.LocalPwd).Check(m); err != nil {
				t.Errorf("integrity: %v", err)
			}
			var xa stun.XORMappedAddress
			if err := xa.GetFrom(m); err != nil || !xa.IP.Equal(net.ParseIP("198.51.100.7")) || xa.Port != 40000 {
				t.Errorf("XOR-MAPPED-ADDRESS %v (%v)", xa, err)
			}
			if chk != tc.check {
				t.Errorf("check %+v, want %+v", chk, tc.check)
			}
		})
	}
}

func TestIsSTUN(t *testing.T) {
	rtp := []byte{0x80, 0, 0, 1, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	dtls := append([]byte{22}, rtp[1:]...)
	for _, p := range [][]byte{nil, rtp, dtls, make([]byte, 19)} {
		if IsSTUN(p) {
			t.Errorf("%x taken for STUN", p)
		}
	}
}

func TestCredsHidePassword(t *testing.T) {
	for _, s := range []string{creds.String(), creds.GoString()} {
		if strings.Contains(s, creds.LocalPwd) {
			t.Errorf("%q shows the password", s)
		}
	}
}

// FuzzAnswer: whatever arrives, Answer returns, never panics.
func FuzzAnswer(f *testing.F) {
	f.Add(request(f, "rtpk:brws", creds.LocalPwd).Raw)
	f.Add(request(f, "rtpk:brws", "x").Raw)
	src := netip.MustParseAddrPort("[2001:db8::1]:5000")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = Answer(b, src, creds)
	})
}

// TestRequestAnswered: a check of ours, answered by an agent holding the
// mirror credentials (here this package's Answer), gives a success we
// accept; with the wrong password at either end it does not.
func TestRequestAnswered(t *testing.T) {
	ours := Creds{LocalUfrag: "rtpk", LocalPwd: "0123456789abcdefghijklmn", RemoteUfrag: "brws", RemotePwd: "brwspassword0123456789ab", Controlling: true}
	theirs := Creds{LocalUfrag: "brws", LocalPwd: ours.RemotePwd, RemoteUfrag: "rtpk"}
	req, tx, err := Request(ours, 42, true)
	if err != nil {
		t.Fatal(err)
	}
	if !IsSTUN(req) || !IsRequest(req) {
		t.Fatal("our check is not a STUN request")
	}
	resp, chk, err := Answer(req, netip.MustParseAddrPort("192.0.2.1:1000"), theirs)
	if err != nil || !chk.UseCandidate || !chk.Controlling || chk.Priority == 0 {
		t.Fatalf("the peer's view of our check: %+v %v", chk, err)
	}
	if IsRequest(resp) {
		t.Fatal("a response taken for a request")
	}
	gotTx, ok, err := Response(resp, ours)
	if gotTx != tx || !ok || err != nil {
		t.Fatalf("response: %v %v", ok, err)
	}
	wrong := ours
	wrong.RemotePwd = "another password 0123456"
	if _, ok, _ := Response(resp, wrong); ok {
		t.Error("a response with a wrong password accepted")
	}
	resp, _, _ = Answer(req, netip.MustParseAddrPort("192.0.2.1:1000"), Creds{LocalUfrag: "brws", LocalPwd: "not ours 0123456789abcde"})
	if _, ok, _ := Response(resp, ours); ok {
		t.Error("a 401 taken for a success")
	}
}
