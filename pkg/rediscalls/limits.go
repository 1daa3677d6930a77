package rediscalls

// Caps on what one call record of Redis may hold. Records come from other
// nodes of the redundancy group (and from whoever else can write to
// Redis): a reader checks every record against these before it trusts
// it, and the scripts bound their loops by them, never by a field of the
// record alone. A writer refuses to store a call over them, so that no
// node writes what the others would skip.

import (
	"errors"
	"fmt"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// The caps.
const (
	// MaxIDLen is the longest call id, tag, label or via-branch (bytes).
	MaxIDLen = 1024
	// MaxOwnerLen is the longest owner node id (as --node-id).
	MaxOwnerLen = 64
	// MaxLegs is the most parties (SIP tags) of one call.
	MaxLegs = 64
	// MaxMedias is the most medias (m= lines) of one call, over all its
	// legs: the bound of the scripts' loops over payload type hashes.
	MaxMedias = 1024
	// MaxStreams is the most streams of one media (RTP and RTCP).
	MaxStreams = 2
	// MaxPayloadTypes is the most payload types of one media.
	MaxPayloadTypes = 128
	// MaxCryptos is the most SDES crypto attributes of one media and
	// direction (rtpengine knows 12 suites); MaxCryptoLen the longest
	// (bytes).
	MaxCryptos   = 32
	MaxCryptoLen = 512
)

// ErrOverLimit marks a record over one of the caps.
var ErrOverLimit = errors.New("call record over a cap")

// CheckLimits checks a call record against the caps.
func CheckLimits(c *nodestate.Call) error {
	over := func(format string, args ...any) error {
		return fmt.Errorf("call %.64q: %s: %w", c.ID, fmt.Sprintf(format, args...), ErrOverLimit)
	}
	if len(c.ID) > MaxIDLen {
		return over("id of %d bytes, at most %d", len(c.ID), MaxIDLen)
	}
	if len(c.Owner) > MaxOwnerLen {
		return over("owner of %d bytes, at most %d", len(c.Owner), MaxOwnerLen)
	}
	if len(c.Legs) > MaxLegs {
		return over("%d legs, at most %d", len(c.Legs), MaxLegs)
	}
	medias := 0
	for i := range c.Legs {
		l := &c.Legs[i]
		for _, s := range []string{l.Tag, l.Label, l.ViaBranch} {
			if len(s) > MaxIDLen {
				return over("leg %d: a tag, label or via-branch of %d bytes, at most %d", i, len(s), MaxIDLen)
			}
		}
		if o := l.Origin; o != nil && max(len(o.Username), len(o.SessionID), len(o.SessionName)) > nodestate.MaxOriginField {
			return over("leg %d: an o= or s= value of over %d bytes", i, nodestate.MaxOriginField)
		}
		medias += len(l.Medias)
		if medias > MaxMedias {
			return over("more than %d medias", MaxMedias)
		}
		for j := range l.Medias {
			m := &l.Medias[j]
			if len(m.Streams) > MaxStreams {
				return over("leg %d media %d: %d streams, at most %d", i, j, len(m.Streams), MaxStreams)
			}
			if m.ICE != nil && max(len(m.ICE.Candidates), len(m.ICE.RTCPCandidates)) > nodestate.MaxICECandidates {
				return over("leg %d media %d: more than %d ICE candidates of a component", i, j, nodestate.MaxICECandidates)
			}
			if len(m.Alt) > MaxStreams {
				return over("leg %d media %d: %d streams of the other family, at most %d", i, j, len(m.Alt), MaxStreams)
			}
			if len(m.PayloadTypes) > MaxPayloadTypes {
				return over("leg %d media %d: %d payload types, at most %d", i, j, len(m.PayloadTypes), MaxPayloadTypes)
			}
			for _, l := range [][]string{m.SDESIn, m.SDESOut} {
				if len(l) > MaxCryptos {
					return over("leg %d media %d: %d crypto attributes, at most %d", i, j, len(l), MaxCryptos)
				}
				for _, c := range l {
					if len(c) > MaxCryptoLen {
						return over("leg %d media %d: a crypto attribute of %d bytes, at most %d", i, j, len(c), MaxCryptoLen)
					}
				}
			}
		}
	}
	return nil
}
