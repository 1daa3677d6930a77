package fwd

// DTLS-SRTP (RFC 5763, RFC 5764) on the packet path. A stream with a DTLS
// role (Stream.DTLS) has the DTLS records its socket receives (first byte
// 20–63, RFC 7983) copied to the engine's control path, like ICE checks:
// the handshake never runs in the loop. The control path keeps a
// github.com/pion/dtls connection per such stream over an adapter of the
// stream's socket (records in from the loop, records out with sendto to
// the party's current endpoint), checks the party's certificate against
// the fingerprint its SDP gave, and exports the SRTP keys of the profile
// negotiated (RFC 5764 §4.2). They reach the loop as a command and become
// the stream's SRTPIn and SRTPOut, which the stream's configuration keeps
// as pending until then (its packets wait in the hold ring, 500 ms at
// most); a later Set with the same DTLS setup keeps them.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/dtlscert"
)

// DTLSRole is rtpkit's role in a stream's DTLS handshake.
type DTLSRole uint8

const (
	// DTLSClient starts the handshake (a=setup:active of ours).
	DTLSClient DTLSRole = 1 + iota
	// DTLSServer waits for the party's (a=setup:passive of ours).
	DTLSServer
)

// DTLS is a stream's DTLS-SRTP setup: rtpkit's role and the party's
// certificate fingerprint from its SDP ("sha-256 AB:CD:…"). The zero
// value: no DTLS.
type DTLS struct {
	Role        DTLSRole
	Fingerprint string
}

// isDTLS reports whether a datagram on a media socket is a DTLS record
// (RFC 7983 §7: first byte 20–63).
func isDTLS(p []byte) bool { return len(p) >= 13 && p[0] >= 20 && p[0] <= 63 }

// dtlsProfiles are the SRTP profiles offered in the handshake, in order
// of preference; their numbers are pion/srtp's too (the IANA registry's).
var dtlsProfiles = []dtls.SRTPProtectionProfile{
	dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.SRTP_AES128_CM_HMAC_SHA1_32, dtls.SRTP_AEAD_AES_256_GCM,
}

// dtlsTimeout bounds a handshake.
const dtlsTimeout = 30 * time.Second

// dtlsSession is the control path's DTLS connection of one stream.
type dtlsSession struct {
	e    *Engine
	id   StreamID
	life uint64 // ctlStream.life
	sockets
	cfg  DTLS
	in   chan []byte
	mu   sync.Mutex
	peer netip.AddrPort // where the last record came from
	stop chan struct{}
	once sync.Once
	// done is closed when run returns; started is when it began.
	done    chan struct{}
	started time.Time
}

// early holds the DTLS records that reached a stream before the party's
// fingerprint did (an answerer that starts its handshake as soon as it
// sent its answer, which reaches the worker a moment later): they wait
// for it, up to earlyMax records for earlyWait, instead of meeting a
// session that can only refuse the party's certificate.
type early struct {
	life uint64
	src  netip.AddrPort
	recs [][]byte
	at   time.Time
}

const (
	earlyMax  = 8
	earlyWait = 2 * time.Second
)

// dtlsRecord hands a DTLS record of stream id to its session, making one
// (the party is the client) if there is none for the stream's setup.
func (e *Engine) dtlsRecord(sessions map[StreamID]*dtlsSession, waiting map[StreamID]*early, j *ctlJob) {
	e.ctl.mu.Lock()
	cfg, ok := e.ctl.streams[j.id]
	e.ctl.mu.Unlock()
	if !ok || !cfg.owns(j.fd) {
		return
	}
	rec := append([]byte(nil), j.buf[:j.n]...)
	if cfg.dtls.Role != 0 && cfg.dtls.Fingerprint == "" {
		w := waiting[j.id]
		if w == nil || w.life != cfg.life {
			w = &early{life: cfg.life, at: time.Now()}
			waiting[j.id] = w
		}
		w.src = j.src
		if len(w.recs) < earlyMax {
			w.recs = append(w.recs, rec)
		}
		return
	}
	e.feedDTLS(sessions, j.id, cfg, j.src, rec)
}

// feedDTLS gives a record from src to stream id's session.
func (e *Engine) feedDTLS(sessions map[StreamID]*dtlsSession, id StreamID, cfg ctlStream, src netip.AddrPort, rec []byte) {
	s := e.dtlsSessionFor(sessions, id, cfg)
	if s == nil {
		return
	}
	s.mu.Lock()
	s.peer = src
	s.mu.Unlock()
	select {
	case s.in <- rec:
	default: // a full queue: the peer retransmits its flight
	}
}

// dtlsSessionFor returns stream id's session for its current setup, ended
// and replaced when the setup changed; nil without DTLS.
func (e *Engine) dtlsSessionFor(sessions map[StreamID]*dtlsSession, id StreamID, cfg ctlStream) *dtlsSession {
	s := sessions[id]
	if s != nil && (s.cfg != cfg.dtls || s.sockets != cfg.sockets || s.life != cfg.life) {
		s.close()
		delete(sessions, id)
		s = nil
	}
	if cfg.dtls.Role == 0 || e.cfg.DTLSCert == nil {
		return nil
	}
	if s != nil && s.ended() {
		// A handshake that failed (a stranger's records, the wrong
		// certificate, a timeout) or a connection that ended: a new one
		// may start, but not sooner than dtlsRetry after the last (each
		// costs a key exchange).
		if time.Since(s.started) < dtlsRetry {
			return nil
		}
		delete(sessions, id)
		s = nil
	}
	if s == nil {
		s = &dtlsSession{e: e, id: id, life: cfg.life, sockets: cfg.sockets, cfg: cfg.dtls, in: make(chan []byte, 32), stop: make(chan struct{}),
			done: make(chan struct{}), started: time.Now()}
		sessions[id] = s
		e.dtlsWG.Add(1)
		go s.run()
	}
	return s
}

// dtlsRetry is the least time between two handshakes of one stream.
const dtlsRetry = time.Second

// ended reports whether the session's goroutine has returned.
func (s *dtlsSession) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *dtlsSession) close() { s.once.Do(func() { close(s.stop) }) }

// run does the handshake and installs the keys, then reads the
// connection (alerts, a close) until it ends.
func (s *dtlsSession) run() {
	defer s.e.dtlsWG.Done()
	defer close(s.done)
	pc := &dtlsPacketConn{s: s}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 || !dtlscert.Matches(raw[0], s.cfg.Fingerprint) {
			return errFingerprint
		}
		return nil
	}
	opts := []dtls.Option{
		dtls.WithCertificates(*s.e.cfg.DTLSCert),
		dtls.WithSRTPProtectionProfiles(dtlsProfiles...),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true), // self-signed: the fingerprint is the check
		dtls.WithVerifyPeerCertificate(verify),
	}
	var conn *dtls.Conn
	var err error
	peer := pc.RemoteAddr()
	if s.cfg.Role == DTLSClient {
		copts := make([]dtls.ClientOption, len(opts))
		for i, o := range opts {
			copts[i] = o
		}
		conn, err = dtls.ClientWithOptions(pc, peer, copts...)
	} else {
		sopts := make([]dtls.ServerOption, 0, len(opts)+1)
		for _, o := range opts {
			sopts = append(sopts, o)
		}
		sopts = append(sopts, dtls.WithClientAuth(dtls.RequireAnyClientCert))
		conn, err = dtls.ServerWithOptions(pc, peer, sopts...)
	}
	if err != nil {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), dtlsTimeout)
	go func() {
		select {
		case <-s.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	err = conn.HandshakeContext(ctx)
	cancel()
	if err != nil {
		s.e.dtlsFailures.Add(1)
		return
	}
	in, out, err := dtlsKeys(conn, s.cfg.Role)
	if err != nil {
		s.e.dtlsFailures.Add(1)
		return
	}
	_ = s.e.setDTLSKeys(s.id, s.cfg, in, out)
	buf := make([]byte, 1500)
	for {
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}

var errFingerprint = errors.New("fwd: the DTLS peer's certificate does not match the fingerprint of its SDP")

// dtlsKeys exports the SRTP keys of a finished handshake (RFC 5764
// §4.2: client key, server key, client salt, server salt): in is what the
// party writes with, out what we write with.
func dtlsKeys(conn *dtls.Conn, role DTLSRole) (in, out SRTP, err error) {
	p, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return SRTP{}, SRTP{}, errors.New("fwd: no SRTP profile negotiated")
	}
	profile := srtp.ProtectionProfile(p)
	info, known := profiles[profile]
	if !known || info.name != "" {
		return SRTP{}, SRTP{}, fmt.Errorf("fwd: SRTP profile %#x not usable", uint16(p))
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return SRTP{}, SRTP{}, errors.New("fwd: no DTLS state")
	}
	kl, sl := info.keyLen, info.saltLen
	km, err := state.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 2*(kl+sl))
	if err != nil {
		return SRTP{}, SRTP{}, fmt.Errorf("fwd: exporting the SRTP keys: %w", err)
	}
	clientKey, serverKey := km[:kl], km[kl:2*kl]
	clientSalt, serverSalt := km[2*kl:2*kl+sl], km[2*kl+sl:]
	client, err := NewSRTP(profile, clientKey, clientSalt, nil)
	if err != nil {
		return SRTP{}, SRTP{}, err
	}
	server, err := NewSRTP(profile, serverKey, serverSalt, nil)
	if err != nil {
		return SRTP{}, SRTP{}, err
	}
	clear(km)
	if role == DTLSClient {
		return server, client, nil
	}
	return client, server, nil
}

// setDTLSKeys gives stream id the keys of its handshake under setup cfg.
func (e *Engine) setDTLSKeys(id StreamID, cfg DTLS, in, out SRTP) error {
	if err := e.toLoop("DTLS keys for", &command{op: opKeys, id: id, s: Stream{DTLS: cfg, SRTPIn: in, SRTPOut: out}}); err != nil {
		return err
	}
	e.mu.Lock()
	if e.streams[id] != nil { // still there: its record gets the keys
		e.dtlsKeys[id] = [2]SRTP{in, out}
	}
	e.mu.Unlock()
	return nil
}

// DTLSKeys returns the SRTP keys stream id's DTLS handshake made (what the
// party sends with, what it is sent with), for the call record: a
// restarted worker or a standby node goes on with them. false if no
// handshake finished on this engine.
func (e *Engine) DTLSKeys(id StreamID) (in, out SRTP, ok bool) {
	e.mu.RLock()
	k, ok := e.dtlsKeys[id]
	e.mu.RUnlock()
	return k[0], k[1], ok
}

// keys applies the keys of a stream's DTLS handshake (opKeys), if the
// stream still has the setup they were made under.
func (l *loop) keys(c *command) {
	s := l.byID[c.id]
	if s == nil || s.cfg.DTLS != c.s.DTLS {
		return
	}
	s.dtlsIn, s.dtlsOut, s.dtlsFor = c.s.SRTPIn, c.s.SRTPOut, c.s.DTLS
	s.configure(s.cfg, s.family, l.window, false)
	if !containsCall(l.touched, s.cfg.Call) {
		l.touched = append(l.touched, s.cfg.Call) // held packets go now
	}
}

func containsCall(l []string, call string) bool {
	for _, c := range l {
		if c == call {
			return true
		}
	}
	return false
}

// dtlsPacketConn is a session's view of its stream's socket for pion/dtls.
// A read deadline set while a read waits takes effect at once (pion/dtls
// sets one to interrupt its reader).
type dtlsPacketConn struct {
	s        *dtlsSession
	dmu      sync.Mutex
	deadline time.Time
	changed  chan struct{} // closed when the deadline changes
}

// RemoteAddr is the party's address as the session knows it: where its
// last record came from, else the stream's endpoint.
func (c *dtlsPacketConn) RemoteAddr() net.Addr {
	return net.UDPAddrFromAddrPort(c.peer())
}

func (c *dtlsPacketConn) peer() netip.AddrPort {
	c.s.mu.Lock()
	p := c.s.peer
	c.s.mu.Unlock()
	if p.IsValid() {
		return p
	}
	if st, ok := c.s.e.Stats(c.s.id); ok && st.Endpoint.IsValid() {
		return st.Endpoint
	}
	return netip.AddrPort{}
}

func (c *dtlsPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c.dmu.Lock()
		d := c.deadline
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		c.dmu.Unlock()
		var timeout <-chan time.Time
		var timer *time.Timer
		if !d.IsZero() {
			if time.Until(d) <= 0 {
				return 0, nil, errTimeout{}
			}
			timer = time.NewTimer(time.Until(d))
			timeout = timer.C
		}
		n, err, again := 0, error(nil), false
		select {
		case b := <-c.s.in:
			n = copy(p, b)
		case <-c.s.stop:
			err = net.ErrClosed
		case <-timeout:
			err = errTimeout{}
		case <-changed: // a new deadline: wait again under it
			again = true
		}
		if timer != nil {
			timer.Stop()
		}
		if again {
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		return n, c.RemoteAddr(), nil
	}
}

func (c *dtlsPacketConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	to := c.peer()
	if !usable(to) {
		return len(p), nil // no party yet: the flight is sent again later
	}
	if err := unix.Sendto(c.s.to(to), p, 0, sockaddrOf(to)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *dtlsPacketConn) Close() error { c.s.close(); return nil }

func (c *dtlsPacketConn) LocalAddr() net.Addr { return &net.UDPAddr{} }

func (c *dtlsPacketConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *dtlsPacketConn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	c.deadline = t
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
	c.dmu.Unlock()
	return nil
}

func (c *dtlsPacketConn) SetWriteDeadline(time.Time) error { return nil }

// errTimeout is a read deadline passing (a net.Error that times out).
type errTimeout struct{}

func (errTimeout) Error() string   { return "fwd: DTLS read deadline" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }
