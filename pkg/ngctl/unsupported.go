package ngctl

// No silent degradation: every key, flag and value of a request that
// rtpkit does not carry out is named in the reply's "warning" (rtpengine's
// reply key), logged once per name and counted by name
// (rtpkit_ng_unsupported_total); where going on would give the endpoints
// media they cannot use (SRTP, DTLS, ICE required, transcoding, T.38) the
// request fails instead, with a reason that names the option.

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/calls"
	"github.com/rtpkit/rtpkit/pkg/dtlscert"
)

// support is what rtpkit does with an option.
type support uint8

const (
	done   support = iota // carried out
	warn                  // not carried out; the call goes on as if absent
	refuse                // not carried out, and without it the media cannot work
)

// keySupport is what rtpkit does with each request key of rtpengine's
// (reference §1.5; aliases with spaces are looked up with hyphens). Keys
// whose support depends on their value are decided in checkKey.
var keySupport = map[string]support{
	"command": done, "call-id": done, "call-ID": done, "from-tag": done, "to-tag": done, "via-branch": done,
	"sdp": done, "flags": done, "replace": done, "rtcp-mux": done, "supports": done, "direction": done,
	"label": done, "from-label": done, "set-label": done, "to-label": done, "address-family": done,
	"media-address": done, "received-from": done, "delete-delay": done, "limit": done,
	"ICE": done, "transport-protocol": done, "DTLS": done, "codec": done, "record-call": done, "SDES": done,
	"ICE-lite": done, "T.38": refuse,
	"OSRTP": done, "DTLS-reverse": done, "DTLS-fingerprint": done, "metadata": warn, "ptime": done, "ptime-reverse": done,
	"TOS": warn, "endpoint-learning": warn, "media-echo": done, "drop-traffic": warn,
	"generate-RTCP": warn, "xmlrpc-callback": warn, "interface": warn, "all": warn, "from-tags": warn,
	"output-destination": warn, "trigger": warn, "trigger-end": warn, "DTMF-security": warn, "delay-buffer": warn,
	"DTMF-delay": warn, "frequency": warn, "volume": warn, "code": warn, "digit": warn, "duration": warn,
	"pause": warn, "file": warn, "blob": warn, "db-id": warn, "repeat-times": warn, "address": warn,
	"sdp-attr": done, "recording-vsc": warn, "set-label-from": warn,
}

// flagSupport is what rtpkit does with each flag of rtpengine 10.5's
// (reference §1.6); prefixed forms are decided in checkFlag.
var flagSupport = map[string]support{
	"trust-address": done, "SIP-source-address": done, "sip-source-address": done, "asymmetric": done,
	"unidirectional": done, "strict-source": done, "media-handover": done, "port-latching": done, "no-port-latching": done,
	"no-rtcp-attribute": done, "full-rtcp-attribute": done, "loop-protect": done, "original-sendrecv": done,
	"fatal": done, "strip-extmap": done, "single-codec": done,
	"reset": warn, "record-call": warn, "reuse-codecs": warn,
	"no-codec-renegotiation": warn, "allow-transcoding": warn, "all": warn, "pad-crypto": done,
	"generate-mid": done, "inject-DTMF": done, "detect-DTMF": done, "generate-RTCP": warn,
	"RTCP-mirror": warn, "debug": warn, "pierce-NAT": warn, "NAT-wait": warn, "trickle-ICE": done,
	"reject-ICE": done, "no-redis-update": warn, "fragment": done, "egress": warn, "SIPREC": warn,
	"passthrough": done, "no-passthrough": done, "no-jitter-buffer": warn, "asymmetric-codecs": warn,
	"symmetric-codecs": warn, "reorder-codecs": warn, "always-transcode": done,
}

// replaceSupport: the replace list's values.
var replaceSupport = map[string]bool{"origin": true, "session-connection": true, "zero-address": true,
	"SDP-version": true, "sdp-version": true, "username": true, "session-name": true, "origin-full": true,
	"force-increment-sdp-ver": true}

// finding is one option not carried out.
type finding struct {
	name   string // for the counter and the log: a bounded set of names
	text   string // for the reply
	refuse bool
}

// checkSupport lists what of request v (its flags and replace values
// already normalised) rtpkit does not carry out. sdp is the request's
// body (ICE attributes in it matter).
func checkSupport(cmd string, v bencode.Value, flags, replace map[string]bool) []finding {
	var out []finding
	for _, p := range v.Dict {
		key := strings.ReplaceAll(p.Key, " ", "-")
		out = append(out, checkKey(cmd, key, p.Value, v)...)
	}
	for _, f := range sortedKeys(flags) {
		if fd, ok := checkFlag(f); ok {
			out = append(out, fd)
		}
	}
	if cmd == "offer" || cmd == "answer" {
		av, ok := v.GetLoose("sdp-attr")
		_, problems := parseSDPAttr(av, ok, flags)
		for _, p := range problems {
			out = append(out, finding{name: "sdp-attr", text: p + " (ignored)"})
		}
	}
	for _, r := range sortedKeys(replace) {
		if !replaceSupport[r] {
			out = append(out, finding{name: "replace-" + bounded(r, replaceNames), text: fmt.Sprintf("replace %q is not supported (ignored)", r)})
		}
	}
	return out
}

// replaceNames are rtpengine's replace values (the counter's names).
var replaceNames = map[string]bool{"origin": true, "origin-full": true, "session-connection": true, "sdp-version": true,
	"SDP-version": true, "username": true, "session-name": true, "zero-address": true, "force-increment-sdp-ver": true}

func checkKey(cmd, key string, val, v bencode.Value) []finding {
	s, _ := val.String()
	switch key {
	case "ICE":
		switch s {
		case "", "remove", "default", "force", "optional":
			return nil
		}
		return []finding{{name: "ICE", text: fmt.Sprintf("ICE=%s is not supported: rtpkit has no relay candidates", s), refuse: true}}
	case "media-echo":
		if cmd != "offer" && cmd != "answer" {
			return nil
		}
		if _, ok := calls.ParseMediaEcho(s); !ok {
			return []finding{{name: "media-echo", text: fmt.Sprintf("media-echo %q is not a mode (blackhole, forward, backward, both): ignored", s)}}
		}
		return nil
	case "ICE-lite":
		switch s {
		case "", "off", "forward", "backward", "both":
			return nil
		}
		return []finding{{name: "ICE-lite", text: fmt.Sprintf("ICE-lite=%s is not a mode (forward, backward, both, off): ignored", s)}}
	case "transport-protocol":
		switch s {
		case "", "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF", "accept":
			return nil
		}
		return []finding{{name: "transport-protocol", text: fmt.Sprintf("transport-protocol %s is not supported", s), refuse: true}}
	case "DTLS":
		switch strings.ToLower(s) {
		case "", "off", "no", "disable", "passive", "active":
			return nil
		}
		return []finding{{name: "DTLS", text: fmt.Sprintf("DTLS=%s is not a DTLS mode (off, passive, active): ignored", s)}}
	case "DTLS-reverse":
		if s == "" || strings.EqualFold(s, "passive") || strings.EqualFold(s, "active") {
			return nil
		}
		return []finding{{name: "DTLS-reverse", text: fmt.Sprintf("DTLS-reverse=%s is not supported: ignored", s)}}
	case "DTLS-fingerprint":
		if _, ok := dtlscert.HashName(s); ok || s == "" {
			return nil
		}
		return []finding{{name: "DTLS-fingerprint", text: fmt.Sprintf("DTLS-fingerprint=%s is not a hash rtpkit knows (sha-1, sha-224, sha-256, sha-384, sha-512): sha-256 is used", s)}}
	case "OSRTP":
		l, _ := val.StringListLenient()
		var out []finding
		for _, x := range l {
			if x != "offer" && x != "accept" {
				out = append(out, finding{name: "OSRTP", text: fmt.Sprintf("OSRTP option %q is not supported (ignored)", x)})
			}
		}
		return out
	case "SDES":
		l, _ := val.StringListLenient()
		var out []finding
		for _, x := range l {
			if !sdesDone(x) {
				out = append(out, finding{name: "SDES", text: fmt.Sprintf("SDES option %q is not supported (ignored)", x)})
			}
		}
		return out
	case "record-call":
		if s == "yes" || s == "on" {
			return []finding{{name: "record-call", text: "record-call is not supported: the call is not recorded"}}
		}
		return nil
	case "codec":
		var out []finding
		for _, c := range val.Dict {
			switch c.Key {
			case "strip", "offer", "except", "mask", "transcode", "accept", "consume", "set":
				continue // carried out (calls/codecs.go, calls/transcode.go)
			}
			out = append(out, finding{name: "codec-" + bounded(c.Key, codecKeys), text: fmt.Sprintf("codec %s is not supported (ignored): the SDP's codecs pass unchanged", c.Key)})
		}
		return out
	}
	if isRTPPFlagsKey(key) {
		return nil // merged before
	}
	sup, known := keySupport[key]
	switch {
	case !known:
		return []finding{{name: "unknown-key", text: fmt.Sprintf("unknown key %q (ignored)", key)}}
	case sup == warn:
		return []finding{{name: key, text: fmt.Sprintf("%s is not supported (ignored)", key)}}
	case sup == refuse:
		return []finding{{name: key, text: fmt.Sprintf("%s is not supported", key), refuse: true}}
	}
	return nil
}

// codecKeys are the codec dictionary's keys (the counter's names).
var codecKeys = map[string]bool{"strip": true, "offer": true, "except": true, "transcode": true, "mask": true,
	"consume": true, "accept": true, "set": true, "ignore": true}

// flagPrefixes are rtpengine's prefixed flags, none carried out yet.
var flagPrefixes = []struct {
	prefix string
	refuse bool
	what   string
}{
	{"codec-transcode-", false, ""},
	{"codec-mask-", false, ""},
	{"codec-accept-", false, ""},
	{"codec-consume-", false, ""},
	{"codec-set-", false, ""},
	{"codec-strip-", false, ""},
	{"codec-offer-", false, ""},
	{"codec-except-", false, ""},
	{"transcode-", false, ""},
	{"codec-", false, "the SDP's codecs pass unchanged"},
	{"endpoint-learning-", false, "rtp-fwd's --endpoint-learning applies"},
	{"T38-", true, "rtpkit does not do T.38 yet"},
	{"T.38-", true, "rtpkit does not do T.38 yet"},
	{"from-tags-", false, "ignored"},
}

func checkFlag(f string) (finding, bool) {
	if strings.HasPrefix(f, "replace-") {
		return finding{}, false // read as the replace list
	}
	if strings.HasPrefix(f, "sdp-attr-") {
		return finding{}, false // read with the sdp-attr key (checkSupport)
	}
	if o, ok := strings.CutPrefix(f, "OSRTP-"); ok {
		if o == "offer" || o == "accept" {
			return finding{}, false
		}
		return finding{name: "OSRTP", text: fmt.Sprintf("flag %s is not supported (ignored)", f)}, true
	}
	if o, ok := strings.CutPrefix(f, "SDES-"); ok {
		if sdesDone(o) {
			return finding{}, false
		}
		return finding{name: "SDES", text: fmt.Sprintf("flag %s is not supported (ignored)", f)}, true
	}
	sup, known := flagSupport[f]
	if known {
		switch sup {
		case done:
			return finding{}, false
		case refuse:
			return finding{name: f, text: fmt.Sprintf("flag %s is not supported", f), refuse: true}, true
		}
		return finding{name: f, text: fmt.Sprintf("flag %s is not supported (ignored)", f)}, true
	}
	for _, p := range flagPrefixes {
		if strings.HasPrefix(f, p.prefix) {
			if p.what == "" {
				return finding{}, false // carried out
			}
			return finding{name: strings.TrimSuffix(p.prefix, "-"), text: fmt.Sprintf("flag %s is not supported: %s", f, p.what), refuse: p.refuse}, true
		}
	}
	return finding{name: "unknown-flag", text: fmt.Sprintf("unknown flag %q (ignored)", f)}, true
}

func bounded(s string, names map[string]bool) string {
	if names[s] {
		return s
	}
	return "other"
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// unsupportedLog logs each option name once per ng-ctl run, and counts
// every occurrence.
type unsupportedLog struct {
	mu      sync.Mutex
	logged  map[string]bool
	counter *prometheus.CounterVec
}

func newUnsupportedLog() *unsupportedLog {
	return &unsupportedLog{logged: map[string]bool{}, counter: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtpkit_ng_unsupported_total",
		Help: "Options of ng requests rtpkit did not carry out (a warning or, where media could not work, an error), by option name.",
	}, []string{"flag"})}
}

// labelOf keeps the counter's label set bounded: the names of rtpengine's
// keys, flags and prefixes, and "unknown-key"/"unknown-flag".
func labelOf(name string) string {
	if _, ok := keySupport[name]; ok {
		return name
	}
	if _, ok := flagSupport[name]; ok {
		return name
	}
	switch name {
	case "unknown-key", "unknown-flag", "ICE", "ICE-lite", "transport-protocol", "DTLS", "SDES", "record-call":
		return name
	}
	if strings.HasPrefix(name, "codec-") || strings.HasPrefix(name, "replace-") {
		return name // bounded by codecKeys and replaceNames
	}
	for _, p := range flagPrefixes {
		if name == strings.TrimSuffix(p.prefix, "-") {
			return name
		}
	}
	return "other"
}

// checkSupport returns the reply's warning (the options not carried out,
// "; "-separated) and, when one of them is refused, the error reason
// instead. Each option name is logged once per run and counted.
func (p *protocol) checkSupport(cmd string, v bencode.Value, req *calls.Request) (warning, refused string) {
	fs := checkSupport(cmd, v, req.Flags, req.Replace)
	if len(fs) == 0 {
		return "", ""
	}
	var warns, refusals []string
	for _, f := range fs {
		p.unsupported.note(p.log, cmd, f)
		if f.refuse {
			refusals = append(refusals, f.text)
		} else {
			warns = append(warns, f.text)
		}
	}
	if len(refusals) > 0 {
		return "", "Unsupported: " + strings.Join(refusals, "; ")
	}
	return strings.Join(warns, "; "), ""
}

// note counts a finding and logs its name the first time.
func (u *unsupportedLog) note(log *slog.Logger, cmd string, f finding) {
	name := labelOf(f.name)
	u.counter.WithLabelValues(name).Inc()
	u.mu.Lock()
	first := !u.logged[name]
	u.logged[name] = true
	u.mu.Unlock()
	if first {
		log.Warn("ng option not carried out (logged once per option)", "command", cmd, "option", name, "detail", f.text, "refused", f.refuse)
	}
}

// sdesDone reports whether rtpkit carries out an SDES option: off (no,
// disable), no-SUITE, pad, lifetime, static, (un)encrypted_srtp,
// (un)encrypted_srtcp and (un)authenticated_srtp.
func sdesDone(o string) bool {
	switch o {
	case "off", "no", "disable", "pad", "lifetime", "static":
		return true
	}
	if sdesSessionParam(o) {
		return true
	}
	return strings.HasPrefix(o, "no-")
}
