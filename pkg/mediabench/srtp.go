package mediabench

// SRTP load (SDES keys in the SDP): the proxy converts between a plain
// RTP party and an SRTP one (rtp-srtp), or between two SRTP parties with
// different suites (srtp-srtp). The parties encrypt with pion/srtp in the
// load generator, which is not the process whose CPU is measured: the
// sender encrypts each packet into a reused buffer as it sends it, and the
// receiver decrypts each packet in place before reading its payload (run
// tag, phase, send time), so that a packet counts as received only if the
// proxy encrypted it with the key it gave the party.

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/pion/srtp/v3"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/sdes"
)

// The SRTP modes of [Config.SRTP].
const (
	// SRTPNone: both parties plain RTP/AVP.
	SRTPNone = ""
	// SRTPFromRTP: party A plain RTP/AVP, party B RTP/SAVP (the offer asks
	// the proxy for transport-protocol RTP/SAVP towards B).
	SRTPFromRTP = "rtp-srtp"
	// SRTPBoth: both parties RTP/SAVP with different suites (and keys).
	SRTPBoth = "srtp-srtp"
)

// DefaultSRTPSuite is the suite under test unless [Config.SRTPSuite] says
// otherwise.
const DefaultSRTPSuite = "AES_CM_128_HMAC_SHA1_80"

// srtpProfiles are the SDES suites pion/srtp does, as the parties use them.
var srtpProfiles = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
	"AES_256_CM_HMAC_SHA1_80": srtp.ProtectionProfileAes256CmHmacSha1_80,
	"AES_256_CM_HMAC_SHA1_32": srtp.ProtectionProfileAes256CmHmacSha1_32,
	"AEAD_AES_128_GCM":        srtp.ProtectionProfileAeadAes128Gcm,
	"AEAD_AES_256_GCM":        srtp.ProtectionProfileAeadAes256Gcm,
}

// srtpOverhead is room for the longest SRTP trailer (a 16-byte GCM tag or
// a 10-byte HMAC tag, no MKI) after a packet.
const srtpOverhead = 32

// srtpPlan is which suite each party uses; "" is plain RTP.
type srtpPlan struct {
	mode           string
	suiteA, suiteB string
}

// CheckSRTP reports whether mode and suite (a suite name, "" for the
// default) are a valid SRTP setting of [Config].
func CheckSRTP(mode, suite string) error {
	_, err := planSRTP(mode, suite)
	return err
}

// planSRTP picks the parties' suites. In rtp-srtp, B uses suite. In
// srtp-srtp, A offers suite and B answers with another one
// (AEAD_AES_128_GCM, or AES_CM_128_HMAC_SHA1_80 if suite is an AEAD one):
// a proxy whose answerer chose the offerer's suite may hand each party the
// other's key, and the packets then pass through unchanged (rtpkit does,
// as rtpengine), which is not the conversion to measure. With two suites
// the proxy decrypts every packet with the sender's key and encrypts it
// again with the receiver's, both ways.
func planSRTP(mode, suite string) (srtpPlan, error) {
	if suite == "" {
		suite = DefaultSRTPSuite
	}
	if _, ok := srtpProfiles[suite]; !ok {
		names := make([]string, 0, len(srtpProfiles))
		for _, s := range sdes.Suites() {
			if _, ok := srtpProfiles[s.Name]; ok {
				names = append(names, s.Name)
			}
		}
		return srtpPlan{}, fmt.Errorf("mediabench: SRTP suite %q: not one of %s", suite, strings.Join(names, ", "))
	}
	switch mode {
	case SRTPNone:
		return srtpPlan{}, nil
	case SRTPFromRTP:
		return srtpPlan{mode: mode, suiteB: suite}, nil
	case SRTPFromDTLS:
		if _, ok := dtlsProfiles[suite]; !ok {
			return srtpPlan{}, fmt.Errorf("mediabench: %s is not a DTLS-SRTP profile (AES_CM_128_HMAC_SHA1_80/_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM)", suite)
		}
		return srtpPlan{mode: mode, suiteB: suite}, nil
	case SRTPBoth:
		other := "AEAD_AES_128_GCM"
		if sdes.SuiteByName(suite).AEAD {
			other = "AES_CM_128_HMAC_SHA1_80"
		}
		return srtpPlan{mode: mode, suiteA: suite, suiteB: other}, nil
	}
	return srtpPlan{}, fmt.Errorf("mediabench: SRTP mode %q: not %q, %q or %q", mode, SRTPFromRTP, SRTPBoth, SRTPFromDTLS)
}

var cryptoRe = regexp.MustCompile(`(?m)^a=crypto:(.*?)\r?$`)

// cryptos reads the a=crypto lines of the SDP of an ng reply.
func cryptos(sdp string) []sdes.Crypto {
	var out []sdes.Crypto
	for _, m := range cryptoRe.FindAllStringSubmatch(sdp, -1) {
		if c, err := sdes.Parse(m[1]); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// srtpContext is a pion context for c's key.
func srtpContext(c sdes.Crypto) (*srtp.Context, error) {
	ctx, err := srtp.CreateContext(c.Key, c.Salt, srtpProfiles[c.Suite.Name])
	if err != nil {
		return nil, fmt.Errorf("SRTP context %s: %w", c.Suite.Name, err)
	}
	return ctx, nil
}

// setupSRTPCall is setupCall with SDES: it sets the parties' contexts
// (enc: the key a party sends with, its own; dec: the key the proxy gave
// it, which it receives with) besides their destinations.
func setupSRTPCall(ctx context.Context, c *ngclient.Client, call string, a, b *socket, plan srtpPlan) error {
	offerSDP := partySDP(a.port, "RTP/AVP", "")
	if plan.suiteA != "" {
		key, err := sdes.New(1, sdes.SuiteByName(plan.suiteA), nil)
		if err != nil {
			return err
		}
		if a.enc, err = srtpContext(key); err != nil {
			return err
		}
		offerSDP = partySDP(a.port, "RTP/SAVP", key.Attribute(sdes.FormatOptions{}))
	}
	offer := ngRequest("offer", call, offerSDP)
	// No DTLS-SRTP beside SDES (rtpengine would offer both; B answers with
	// SDES only anyway).
	offer.Set("DTLS", bencode.Str("off"))
	if plan.suiteA == "" {
		offer.Set("transport-protocol", bencode.Str("RTP/SAVP"))
	}
	forB, toB, err := signal(ctx, c, call, offer)
	if err != nil {
		return err
	}
	var offered *sdes.Crypto
	for _, cr := range cryptos(toB) {
		if cr.Suite.Name == plan.suiteB {
			offered = &cr
			break
		}
	}
	if offered == nil {
		return fmt.Errorf("offer %s: B was offered no %s:\n%s", call, plan.suiteB, toB)
	}
	if b.dec, err = srtpContext(*offered); err != nil {
		return err
	}
	bKey, err := sdes.New(offered.Tag, offered.Suite, nil)
	if err != nil {
		return err
	}
	if b.enc, err = srtpContext(bKey); err != nil {
		return err
	}
	forA, toA, err := signal(ctx, c, call, ngRequest("answer", call, partySDP(b.port, "RTP/SAVP", bKey.Attribute(sdes.FormatOptions{}))))
	if err != nil {
		return err
	}
	answered := cryptos(toA)
	switch {
	case plan.suiteA == "" && len(answered) > 0:
		return fmt.Errorf("answer %s: plain A was answered with a=crypto:\n%s", call, toA)
	case plan.suiteA != "" && (len(answered) == 0 || answered[0].Suite.Name != plan.suiteA):
		return fmt.Errorf("answer %s: A was not answered its %s:\n%s", call, plan.suiteA, toA)
	case plan.suiteA != "":
		if a.dec, err = srtpContext(answered[0]); err != nil {
			return err
		}
	}
	a.setDest(forA)
	b.setDest(forB)
	return nil
}
