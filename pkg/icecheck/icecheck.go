// Package icecheck answers ICE connectivity checks (RFC 8445 §7.3) that
// arrive on a media socket: a STUN Binding request is checked against the
// stream's ICE credentials (short-term: USERNAME "ours:theirs",
// MESSAGE-INTEGRITY keyed with our password, FINGERPRINT) and answered
// with a Binding success response that carries the address the request
// came from (XOR-MAPPED-ADDRESS), or with a 401 error when the
// credentials do not match (RFC 8489 §9.1.3).
//
// It is the STUN half of rtpkit's ICE: the packet loop (pkg/fwd) tells
// STUN from RTP, RTCP and DTLS by the first byte (RFC 7983) and hands
// checks to its control path, which calls [Answer] and latches the
// stream to a pair the peer nominated. STUN encoding is github.com/pion/stun.
// Passwords are never formatted by this package.
package icecheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/pion/stun/v3"
)

// Creds are a stream's ICE credentials: ours (which the peer's checks
// must use: USERNAME starts "LocalUfrag:", integrity keyed with
// LocalPwd), the peer's (its user fragment is the USERNAME's second part;
// empty: not checked, as for a peer whose SDP has not come yet; its
// password keys our checks to it), and our role.
type Creds struct {
	LocalUfrag, LocalPwd, RemoteUfrag, RemotePwd string
	Controlling                                  bool
	// Lite: we are an ICE-lite agent (RFC 8445 §2.5): we answer checks
	// and never send any.
	Lite bool
}

// CanCheck reports whether c lets us send checks to the peer (its
// credentials are known).
func (c Creds) CanCheck() bool {
	return c.Enabled() && !c.Lite && c.RemoteUfrag != "" && c.RemotePwd != ""
}

// Enabled reports whether c holds credentials to answer checks with.
func (c Creds) Enabled() bool { return c.LocalUfrag != "" && c.LocalPwd != "" }

// String hides the password.
func (c Creds) String() string {
	if !c.Enabled() {
		return "no ICE"
	}
	return fmt.Sprintf("ICE ufrag %s/%s controlling=%t [passwords hidden]", c.LocalUfrag, c.RemoteUfrag, c.Controlling)
}

// GoString hides the password from %#v too.
func (c Creds) GoString() string { return "icecheck.Creds{" + c.String() + "}" }

// IsSTUN reports whether a datagram on a media socket is STUN: first
// byte 0–3 (RFC 7983 §7) and the magic cookie in place.
func IsSTUN(p []byte) bool {
	return len(p) >= 20 && p[0] < 4 && p[4] == 0x21 && p[5] == 0x12 && p[6] == 0xa4 && p[7] == 0x42
}

// Check is what a valid connectivity check said.
type Check struct {
	// UseCandidate: the peer (controlling) nominates this pair.
	UseCandidate bool
	// Controlling: the peer says it is the controlling agent.
	Controlling bool
	// Priority is the peer's PRIORITY (a peer-reflexive candidate's).
	Priority uint32
}

// Errors of Answer. ErrUnauthorized comes with a 401 response to send.
var (
	ErrNotRequest   = errors.New("icecheck: not a STUN Binding request")
	ErrUnauthorized = errors.New("icecheck: credentials do not match")
	ErrMalformed    = errors.New("icecheck: malformed STUN message")
	ErrUnknown      = errors.New("icecheck: not an answer to a check of ours")
)

// peerReflexivePriority is the PRIORITY our checks carry: that of a
// peer-reflexive candidate (type preference 110, RFC 8445 §7.1.1) with
// the highest local preference, component 1.
const peerReflexivePriority = 110<<24 | 65535<<8 | 255

// Request builds a connectivity check of ours to the peer (USERNAME
// "theirs:ours", integrity keyed with the peer's password, our role with
// tiebreaker, USE-CANDIDATE if nominate) and returns it with its
// transaction id.
func Request(c Creds, tiebreaker uint64, nominate bool) ([]byte, [stun.TransactionIDSize]byte, error) {
	tb := binary.BigEndian.AppendUint64(nil, tiebreaker)
	role := stun.AttrICEControlled
	if c.Controlling {
		role = stun.AttrICEControlling
	}
	prio := binary.BigEndian.AppendUint32(nil, peerReflexivePriority)
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewSoftware(Software), stun.NewUsername(c.RemoteUfrag + ":" + c.LocalUfrag),
		stun.RawAttribute{Type: stun.AttrPriority, Value: prio}, stun.RawAttribute{Type: role, Value: tb}}
	if nominate {
		setters = append(setters, stun.RawAttribute{Type: stun.AttrUseCandidate})
	}
	setters = append(setters, stun.NewShortTermIntegrity(c.RemotePwd), stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return nil, [stun.TransactionIDSize]byte{}, fmt.Errorf("icecheck: building a check: %w", err)
	}
	return m.Raw, m.TransactionID, nil
}

// Software is the SOFTWARE attribute of rtpkit's checks, their first
// attribute as in rtpengine's: it names rtpkit as an rtpengine-compatible
// agent, so that tools and tests that tell rtpengine's checks by that
// attribute's prefix ("rtpengine") recognise rtpkit's as the same kind.
const Software = "rtpengine-compatible rtpkit"

// Response reads a STUN response to one of our checks: its transaction
// id, and whether it is a success whose integrity (the peer's password)
// holds. An error response or a bad one gives false.
func Response(b []byte, c Creds) ([stun.TransactionIDSize]byte, bool, error) {
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return [stun.TransactionIDSize]byte{}, false, ErrMalformed
	}
	if m.Type.Class != stun.ClassSuccessResponse && m.Type.Class != stun.ClassErrorResponse {
		return m.TransactionID, false, ErrUnknown
	}
	if m.Type != stun.BindingSuccess {
		return m.TransactionID, false, nil
	}
	if stun.NewShortTermIntegrity(c.RemotePwd).Check(m) != nil {
		return m.TransactionID, false, ErrUnauthorized
	}
	return m.TransactionID, true, nil
}

// IsRequest reports whether a STUN message is a request (not a response
// or an indication).
func IsRequest(b []byte) bool { return len(b) >= 2 && b[0]&0x01 == 0 && b[1]&0x10 == 0 }

// Answer checks the Binding request req, received from src, against c.
// It returns the response to send back to src: a success response with
// the check's details, or a 401 error response with ErrUnauthorized. A
// message that is not a Binding request, or is malformed, gets no
// response (nil and an error).
func Answer(req []byte, src netip.AddrPort, c Creds) ([]byte, Check, error) {
	m := &stun.Message{Raw: append([]byte(nil), req...)}
	if err := m.Decode(); err != nil {
		return nil, Check{}, ErrMalformed
	}
	if m.Type != stun.BindingRequest {
		return nil, Check{}, ErrNotRequest
	}
	if _, err := m.Get(stun.AttrFingerprint); err == nil {
		if stun.Fingerprint.Check(m) != nil {
			return nil, Check{}, ErrMalformed // damaged: silently dropped
		}
	}
	var user stun.Username
	if err := user.GetFrom(m); err != nil || !c.Enabled() || !usernameMatches(user.String(), c) {
		return unauthorized(m)
	}
	if stun.NewShortTermIntegrity(c.LocalPwd).Check(m) != nil {
		return unauthorized(m)
	}
	var chk Check
	if _, err := m.Get(stun.AttrUseCandidate); err == nil {
		chk.UseCandidate = true
	}
	if _, err := m.Get(stun.AttrICEControlling); err == nil {
		chk.Controlling = true
	}
	if v, err := m.Get(stun.AttrPriority); err == nil && len(v) == 4 {
		chk.Priority = uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
	}
	resp, err := stun.Build(
		stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.IP(src.Addr().Unmap().AsSlice()), Port: int(src.Port())},
		stun.NewShortTermIntegrity(c.LocalPwd), stun.Fingerprint,
	)
	if err != nil {
		return nil, Check{}, fmt.Errorf("icecheck: building the response: %w", err)
	}
	return resp.Raw, chk, nil
}

// usernameMatches checks USERNAME "ours:theirs" (RFC 8445 §7.2.2).
func usernameMatches(u string, c Creds) bool {
	ours, theirs, ok := strings.Cut(u, ":")
	return ok && ours == c.LocalUfrag && (c.RemoteUfrag == "" || theirs == c.RemoteUfrag)
}

// unauthorized builds the 401 error response to m (no integrity: the
// sender's credentials are not ours to trust).
func unauthorized(m *stun.Message) ([]byte, Check, error) {
	resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingError,
		stun.CodeUnauthorized, stun.Fingerprint)
	if err != nil {
		return nil, Check{}, fmt.Errorf("icecheck: building the error: %w", err)
	}
	return resp.Raw, Check{}, ErrUnauthorized
}
