package calls

// SDES-SRTP (RFC 4568) as rtpengine 10.5 negotiates it (its
// __generate_crypto and __sdes_accept): each party's media keeps the keys
// the party gave (sdesIn: it sends with the first) and those rtpkit gave
// it (sdesOut: it receives with the first). An offer towards an SRTP
// receiver copies the offerer's suites with their keys and tags (so the
// same suite on both sides passes through unchanged), then every other
// suite the packet path can do with new keys; an answer keeps of each side
// the one crypto in use.

import (
	"io"
	"strings"

	"github.com/rtpkit/rtpkit/pkg/sdes"
	"github.com/rtpkit/rtpkit/pkg/sdp"
)

// srtpProto reports whether a transport protocol is SRTP keyed in the SDP
// (RTP/SAVP, RTP/SAVPF); the UDP/TLS ones (DTLS-SRTP) are not.
func srtpProto(p string) bool {
	return strings.EqualFold(p, "RTP/SAVP") || strings.EqualFold(p, "RTP/SAVPF")
}

// ErrNoSDES is an SRTP media for which there is no SDES crypto suite that
// rtpkit can do (none given, all unusable, or SDES turned off) and no
// DTLS-SRTP either: its media could not work.
var ErrNoSDES = &Reasoned{"Unsupported: SRTP media without an SDES crypto suite rtpkit can do (and no DTLS-SRTP)"}

// ErrSDESAnswer is an SRTP answer whose crypto tag and suite match nothing
// that was offered to the answerer.
var ErrSDESAnswer = &Reasoned{"SDES answer matches no offered crypto suite"}

// rtpProto reports whether a protocol is plain RTP (RTP/AVP, RTP/AVPF),
// which a=crypto lines make opportunistic SRTP (OSRTP, RFC 8643).
func rtpProto(p string) bool {
	return strings.EqualFold(p, "RTP/AVP") || strings.EqualFold(p, "RTP/AVPF")
}

// readCryptos parses the a=crypto lines of the sender's media, SRTP or
// OSRTP, keeping those with a suite the packet path can do and not
// refused by SDES-no (rtpengine ignores lines it cannot parse).
func readCryptos(m *sdp.Media, req *Request) []sdes.Crypto {
	if !srtpProto(m.Proto()) && !rtpProto(m.Proto()) {
		return nil
	}
	var out []sdes.Crypto
	for _, v := range m.Attr("crypto") {
		c, err := sdes.Parse(v)
		// rtp-fwd does every suite rtpengine knows (pion/srtp, and
		// pkg/srtpctx for AES-192, F8 and UNAUTHENTICATED_SRTP).
		if err != nil || req.SDES["no-"+c.Suite.Name] {
			continue
		}
		out = append(out, c)
	}
	return out
}

// offerCryptos sets what the receiver of an offer is offered (rm.sdesOut)
// from the sender's cryptos (sm.sdesIn) and what it was offered before.
func offerCryptos(sm, rm *media, req *Request, r io.Reader) error {
	// OSRTP: an RTP/AVP offer with keys goes on as one (rtpengine passes
	// OSRTP through), and OSRTP offer makes a plain offer one.
	rm.osrtp = rtpProto(rm.proto) && (sm.osrtp || req.OSRTP["offer"])
	if !srtpProto(rm.proto) && !rm.osrtp || req.SDES["off"] {
		rm.sdesOut = nil
		rm.dtlsOnly = rm.dtls != nil && srtpProto(rm.proto)
		return nil
	}
	if rm.dtls != nil && len(rm.sdesOut) == 0 && (rm.dtls.Fingerprint != "" || rm.dtlsOnly) {
		// A receiver that settled on DTLS, or was offered DTLS alone
		// before: DTLS only (rtpengine keeps its DTLS and SDES media flags).
		return nil
	}
	rm.dtlsOnly = false
	var out []sdes.Crypto
	seen := map[*sdes.Suite]bool{}
	next := uint32(1) // the next tag of ours: above every tag seen
	for _, c := range sm.sdesIn {
		out = append(out, c)
		seen[c.Suite] = true
		next = max(next, c.Tag+1)
	}
	for _, c := range rm.sdesOut { // a re-offer keeps the keys offered before
		if seen[c.Suite] {
			continue
		}
		c.Tag = max(c.Tag, next)
		next = c.Tag + 1
		out = append(out, c)
		seen[c.Suite] = true
	}
	for _, s := range sdes.Suites() {
		if seen[s] || req.SDES["no-"+s.Name] {
			continue
		}
		c, err := sdes.New(next, s, r)
		if err != nil {
			return err
		}
		next++
		out = append(out, c)
	}
	for i := range out {
		sessionFlags(&out[i], req, true)
	}
	rm.sdesOut = out
	return nil
}

// acceptCryptos keeps, of what the answerer was offered (sm.sdesOut), the
// crypto its answer chose (same tag and suite as its first, sm.sdesIn).
func acceptCryptos(sm *media) error {
	if len(sm.sdesIn) == 0 {
		if rtpProto(sm.proto) {
			// An OSRTP offer answered without keys: the answerer stays
			// plain RTP both ways (RFC 8643 §3.2).
			sm.sdesOut = nil
		}
		return nil
	}
	in := sm.sdesIn[0]
	for _, c := range sm.sdesOut {
		if c.Tag == in.Tag && c.Suite == in.Suite {
			sm.sdesIn, sm.sdesOut = sm.sdesIn[:1], []sdes.Crypto{c}
			return nil
		}
	}
	return ErrSDESAnswer
}

// answerCryptos sets what the offerer is answered (rm.sdesOut): of the
// suites it offered (rm.sdesIn), the one the answerer chose if it offered
// that, else its first; with the answerer's key when the suites are the
// same (the packets then pass through unchanged), else a new one.
//
// An offerer of OSRTP gets SRTP when the answerer answered with keys, or
// with OSRTP accept; otherwise both stay plain.
func answerCryptos(sm, rm *media, req *Request, r io.Reader) error {
	srtp := srtpProto(rm.proto) || rm.osrtp && (len(sm.sdesIn) > 0 || req.OSRTP["accept"])
	if !srtp || len(rm.sdesIn) == 0 {
		if !srtpProto(rm.proto) {
			rm.sdesIn = nil // it sends plain RTP
		}
		rm.sdesOut = nil
		return nil
	}
	if req.SDES["static"] && len(rm.sdesOut) == 1 {
		// SDES static: keep the crypto answered before if the offer still
		// has its suite and tag, whatever the answerer chose.
		for _, c := range rm.sdesIn {
			if c.Suite == rm.sdesOut[0].Suite && c.Tag == rm.sdesOut[0].Tag {
				rm.sdesIn = []sdes.Crypto{c}
				return nil
			}
		}
	}
	in := rm.sdesIn[0]
	var chosen *sdes.Crypto
	if len(sm.sdesIn) > 0 {
		chosen = &sm.sdesIn[0]
		for _, c := range rm.sdesIn {
			if c.Suite == chosen.Suite {
				in = c
				break
			}
		}
	}
	if len(rm.sdesOut) == 1 && rm.sdesOut[0].Suite == in.Suite && rm.sdesOut[0].Tag == in.Tag {
		rm.sdesIn = []sdes.Crypto{in} // answered before: our key stays
		return nil
	}
	out := sdes.Crypto{Tag: in.Tag, Suite: in.Suite, UnencryptedSRTP: in.UnencryptedSRTP,
		UnencryptedSRTCP: in.UnencryptedSRTCP, UnauthenticatedSRTP: in.UnauthenticatedSRTP}
	if chosen != nil && chosen.Suite == in.Suite {
		out.Key, out.Salt, out.MKI = chosen.Key, chosen.Salt, chosen.MKI
	} else {
		c, err := sdes.New(in.Tag, in.Suite, r)
		if err != nil {
			return err
		}
		out.Key, out.Salt = c.Key, c.Salt
	}
	sessionFlags(&out, req, false)
	rm.sdesIn, rm.sdesOut = []sdes.Crypto{in}, []sdes.Crypto{out}
	return nil
}

// sessionFlags applies SDES unencrypted_srtp, unencrypted_srtcp and
// unauthenticated_srtp (in an offer) and encrypted_srtp, encrypted_srtcp,
// authenticated_srtp (always) to a crypto of ours, as rtpengine's
// __sdes_flags.
func sessionFlags(c *sdes.Crypto, req *Request, offer bool) {
	switch {
	case offer && req.SDES["unencrypted_srtp"]:
		c.UnencryptedSRTP = true
	case req.SDES["encrypted_srtp"]:
		c.UnencryptedSRTP = false
	}
	switch {
	case offer && req.SDES["unencrypted_srtcp"]:
		c.UnencryptedSRTCP = true
	case req.SDES["encrypted_srtcp"]:
		c.UnencryptedSRTCP = false
	}
	switch {
	case offer && req.SDES["unauthenticated_srtp"]:
		c.UnauthenticatedSRTP = true
	case req.SDES["authenticated_srtp"]:
		c.UnauthenticatedSRTP = false
	}
}

// cryptoAttrs are the a=crypto lines the receiver gets.
func cryptoAttrs(rm *media, req *Request) []string {
	o := sdes.FormatOptions{Pad: req.SDES["pad"] || req.flag("pad-crypto"), Lifetime: req.SDES["lifetime"]}
	out := make([]string, 0, len(rm.sdesOut))
	for _, c := range rm.sdesOut {
		out = append(out, "crypto:"+c.Attribute(o))
	}
	return out
}

// cryptoRecord and cryptosFromRecord convert cryptos to and from the call
// record's form (a=crypto values, padded).
func cryptoRecord(l []sdes.Crypto) []string {
	if len(l) == 0 {
		return nil
	}
	out := make([]string, len(l))
	for i, c := range l {
		out[i] = c.Attribute(sdes.FormatOptions{Pad: true})
	}
	return out
}

func cryptosFromRecord(l []string) []sdes.Crypto {
	var out []sdes.Crypto
	for _, v := range l {
		if c, err := sdes.Parse(v); err == nil {
			out = append(out, c)
		}
	}
	return out
}
