package ngctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/calls"
)

// protocol turns ng documents into engine calls and replies (reference
// §1): bencode or JSON in, the same encoding out; result always last.
type protocol struct {
	engine *calls.Engine
	log    *slog.Logger
	lim    bencode.Limits

	mu      sync.Mutex
	proxies map[netip.Addr]*proxyStats
	cmds    map[string]*cmdStats
	// metrics, if set, counts requests for /metrics.
	metrics *ngMetrics
	// unsupported logs and counts the options not carried out.
	unsupported *unsupportedLog
	// publishDTMF asks the workers to play DTMF (the bus; nil: none).
	publishDTMF func(ngapi.PlayDTMF) error
}

type proxyStats struct {
	count    map[string]int64
	duration map[string]time.Duration
	errors   int64
}

type cmdStats struct {
	n                   int64
	total, least, worst time.Duration
}

func newProtocol(e *calls.Engine, log *slog.Logger) *protocol {
	return &protocol{engine: e, log: log, proxies: map[netip.Addr]*proxyStats{}, cmds: map[string]*cmdStats{},
		unsupported: newUnsupportedLog()}
}

// Handle answers one ng document; it is the ngserver Handler.
func (p *protocol) Handle(ctx context.Context, doc []byte, from netip.AddrPort) []byte {
	if len(doc) == 0 {
		return encodeReply(errorReply("Invalid data (no payload)"), false)
	}
	var v bencode.Value
	var err error
	isJSON := false
	switch doc[0] {
	case 'd':
		v, err = bencode.Decode(doc, p.lim)
		if err != nil || v.Kind != bencode.KindDict {
			return encodeReply(errorReply("Could not decode bencode dictionary"), false)
		}
	case '{':
		isJSON = true
		v, err = bencode.FromJSON(doc, p.lim)
		if err != nil || v.Kind != bencode.KindDict {
			return encodeReply(errorReply("Failed to parse JSON document"), true)
		}
	default:
		return encodeReply(errorReply("Invalid NG data format"), false)
	}
	cmd, ok := v.GetString("command")
	if !ok {
		return encodeReply(errorReply(`Dictionary contains no key "command"`), isJSON)
	}
	if v, err = mergeRTPPFlags(v); err != nil {
		return encodeReply(errorReply(err.Error()), isJSON)
	}
	start := time.Now()
	reply := p.dispatch(ctx, cmd, v, from)
	p.account(cmd, from.Addr(), time.Since(start), isError(reply))
	return encodeReply(reply, isJSON)
}

func isError(r bencode.Value) bool {
	s, _ := r.GetString("result")
	return s == "error"
}

func (p *protocol) dispatch(ctx context.Context, cmd string, v bencode.Value, from netip.AddrPort) bencode.Value {
	switch cmd {
	case "ping":
		return bencode.NewDict(bencode.Pair{Key: "result", Value: bencode.Str("pong")})
	case "offer", "answer", "delete", "query", "list", "block DTMF", "unblock DTMF", "play DTMF":
	case "statistics":
		return p.statistics()
	default:
		return errorReply("Unrecognized command")
	}
	req, err := parseRequest(cmd, v, from)
	if err != nil {
		return errorReply(err.Error())
	}
	warning, refused := p.checkSupport(cmd, v, req)
	if refused != "" {
		return errorReply(refused)
	}
	if cmd == "play DTMF" {
		return p.playDTMF(v, req)
	}
	reply := p.call(ctx, cmd, req)
	if warning != "" && !isError(reply) {
		if w, ok := reply.GetString("warning"); ok && w != "" {
			warning = w + "; " + warning
		}
		// result stays the last key, as rtpengine writes it.
		res, _ := reply.Get("result")
		reply.Delete("result")
		reply.Set("warning", bencode.Str(warning))
		reply.Set("result", res)
	}
	return reply
}

// call carries out an offer, answer, delete, query or list.
func (p *protocol) call(ctx context.Context, cmd string, req *calls.Request) bencode.Value {
	var err error
	switch cmd {
	case "offer", "answer":
		var out []byte
		if cmd == "offer" {
			out, err = p.engine.Offer(ctx, req)
		} else {
			out, err = p.engine.Answer(ctx, req)
		}
		if err != nil {
			var ll *calls.LoadLimitError
			if errors.As(err, &ll) {
				return bencode.NewDict(bencode.Pair{Key: "result", Value: bencode.Str("load limit")},
					bencode.Pair{Key: "message", Value: bencode.Str(ll.Message)})
			}
			p.log.Debug("ng request failed", "command", cmd, "call", req.CallID, "err", err)
			return errorReply(calls.Reason(err))
		}
		r := bencode.DictCap(2)
		if len(out) > 0 {
			r.Set("sdp", bencode.Bytes(out))
		}
		return ok(r)
	case "delete":
		res, err := p.engine.Delete(req)
		if err != nil {
			return errorReply(calls.Reason(err))
		}
		r := bencode.DictCap(8)
		if res.Stats != nil {
			statsInto(&r, res.Stats)
		}
		if res.Warning != "" {
			r.Set("warning", bencode.Str(res.Warning))
		}
		return ok(r)
	case "block DTMF", "unblock DTMF":
		if err := p.engine.BlockDTMF(req, cmd == "block DTMF"); err != nil {
			return errorReply(calls.Reason(err))
		}
		return ok(bencode.DictCap(1))
	case "query":
		st, err := p.engine.Query(req)
		if err != nil {
			return errorReply(calls.Reason(err))
		}
		r := bencode.DictCap(7)
		statsInto(&r, st)
		return ok(r)
	default: // list
		limit := req.Limit
		if limit == -1 {
			limit = 32
		}
		ids, err := p.engine.List(limit)
		if err != nil {
			return errorReply(calls.Reason(err))
		}
		return ok(bencode.NewDict(bencode.Pair{Key: "calls", Value: bencode.Strs(ids...)}))
	}
}

func ok(r bencode.Value) bencode.Value {
	r.Set("result", bencode.Str("ok"))
	return r
}

func errorReply(reason string) bencode.Value {
	return bencode.NewDict(bencode.Pair{Key: "result", Value: bencode.Str("error")},
		bencode.Pair{Key: "error-reason", Value: bencode.Str(reason)})
}

func encodeReply(r bencode.Value, isJSON bool) []byte {
	if isJSON {
		return bencode.ToJSON(r)
	}
	return bencode.Encode(r)
}

// errBadRequest is a request key with a value of the wrong shape.
type errBadRequest string

func (e errBadRequest) Error() string { return string(e) }

// prefixedOptions merges an option list (SDES, OSRTP) and the flags with
// its prefix (SDES-X) into one set of option names (off for its spellings
// no and disable).
func prefixedOptions(list []string, flags map[string]bool, prefix string) map[string]bool {
	var out map[string]bool
	add := func(o string) {
		if o == "no" || o == "disable" {
			o = "off"
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[o] = true
	}
	for _, o := range list {
		add(o)
	}
	for f := range flags {
		if o, ok := strings.CutPrefix(f, prefix); ok && o != "" {
			add(o)
		}
	}
	return out
}

// sdesOptions folds the upper-case spellings rtpengine takes for the SDES
// session parameters (UNENCRYPTED_SRTP, …) to the lower-case ones.
func sdesOptions(m map[string]bool) map[string]bool {
	for o := range m {
		if l := strings.ToLower(o); l != o && sdesSessionParam(l) {
			delete(m, o)
			m[l] = true
		}
	}
	return m
}

// sdesSessionParam reports whether o is one of SDES's session-parameter
// options.
func sdesSessionParam(o string) bool {
	switch o {
	case "unencrypted_srtp", "unencrypted_srtcp", "unauthenticated_srtp", "encrypted_srtp", "encrypted_srtcp", "authenticated_srtp":
		return true
	}
	return false
}

// replaceAliases are spellings of replace values that rtpengine takes
// besides the one rtpkit looks up.
var replaceAliases = map[string]string{"origin_full": "origin-full", "force-increment-SDP-ver": "force-increment-sdp-ver"}

// parseRequest reads the keys of a call command (reference §1.5). offer
// and answer accept the space/hyphen spellings of their keys; delete,
// query and list look up exact keys. Unknown keys are ignored.
func parseRequest(cmd string, v bencode.Value, from netip.AddrPort) (*calls.Request, error) {
	loose := cmd == "offer" || cmd == "answer"
	get := func(key string) (bencode.Value, bool) {
		if loose {
			return v.GetLoose(key)
		}
		return v.Get(key)
	}
	str := func(keys ...string) string {
		for _, k := range keys {
			if x, ok := get(k); ok {
				if s, ok := x.String(); ok {
					return s
				}
			}
		}
		return ""
	}
	list := func(keys ...string) []string {
		for _, k := range keys {
			if x, ok := get(k); ok {
				if l, ok := x.StringList(); ok {
					return l
				}
			}
		}
		return nil
	}
	// set reads a list; flags, replace and rtcp-mux values match with
	// spaces as hyphens, supports values as they are ("load limit").
	// An absent or empty list is a nil map (read-only, like the others).
	set := func(key string) map[string]bool {
		l := list(key)
		if len(l) == 0 {
			return nil
		}
		m := make(map[string]bool, len(l))
		for _, s := range l {
			if key != "supports" {
				s = strings.ReplaceAll(s, " ", "-")
			}
			m[s] = true
		}
		return m
	}
	r := &calls.Request{
		Command: cmd, Source: from, DeleteDelay: -1, Limit: -1,
		FromTag: str2(v, "from-tag"), ToTag: str2(v, "to-tag"), ViaBranch: str2(v, "via-branch"),
		Flags: set("flags"), Replace: set("replace"), RTCPMux: set("rtcp-mux"), Supports: set("supports"),
		Direction: list("direction"), ICE: str("ICE"), TransportProtocol: str("transport-protocol"),
		ICELite: str("ICE-lite"), DTLS: str("DTLS"), DTLSReverse: str("DTLS-reverse"), DTLSFingerprint: str("DTLS-fingerprint"),
		Label: str("label", "from-label"), SetLabel: str("set-label", "to-label"),
	}
	if loose {
		r.SDES = sdesOptions(prefixedOptions(list("SDES"), r.Flags, "SDES-"))
		cv, _ := get("codec")
		r.Codec = codecOptions(cv, list("flags"))
		r.OSRTP = prefixedOptions(list("OSRTP"), r.Flags, "OSRTP-")
		// An unknown value is named in the reply's warning (checkKey).
		r.MediaEcho, _ = calls.ParseMediaEcho(str("media-echo"))
		// So are the parts of sdp-attr that cannot be used (checkSupport).
		av, ok := get("sdp-attr")
		r.SDPAttr, _ = parseSDPAttr(av, ok, r.Flags)
	}
	// replace-X in the flags (as rtpp-flags sends it) is X of the
	// replace list.
	for f := range r.Flags {
		if x, ok := strings.CutPrefix(f, "replace-"); ok && x != "" {
			if r.Replace == nil {
				r.Replace = map[string]bool{}
			}
			r.Replace[x] = true
		}
	}
	// Other spellings rtpengine takes for replace values.
	for alias, name := range replaceAliases {
		if r.Replace[alias] {
			delete(r.Replace, alias)
			r.Replace[name] = true
		}
	}
	if loose {
		r.CallID = str("call-id", "call-ID")
	} else {
		r.CallID = str2(v, "call-id")
	}
	if err := checkCallID(r.CallID); err != nil {
		return nil, err
	}
	if s, ok := v.GetString("sdp"); ok {
		r.SDP = []byte(s)
	}
	switch str("address-family") {
	case "":
	case "IP4":
		r.AddressFamily = 4
	case "IP6":
		r.AddressFamily = 6
	default:
		return nil, errBadRequest("Unsupported address family")
	}
	if s := str("media-address"); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, errBadRequest(fmt.Sprintf("Failed to parse media-address %q", s))
		}
		r.MediaAddress = a.Unmap()
	}
	if rf := list("received-from"); len(rf) >= 2 {
		a, err := netip.ParseAddr(rf[1])
		if err == nil {
			r.ReceivedFrom = a.Unmap()
		}
	}
	intKey := func(keys ...string) (int, bool) {
		for _, k := range keys {
			if x, ok := v.Get(k); ok {
				if n, ok := x.Int(); ok {
					return int(n), true
				}
			}
		}
		return 0, false
	}
	if n, ok := intKey("delete-delay", "delete delay"); ok && n >= 0 {
		r.DeleteDelay = n
	}
	// ptime and ptime-reverse: an integer, or a string of one (as
	// Kamailio's flags send it); 1–1000 ms, anything else is not taken.
	ptimeKey := func(keys ...string) int {
		for _, k := range keys {
			x, ok := v.Get(k)
			if !ok {
				continue
			}
			n, ok := x.Int()
			if !ok {
				if s, sok := x.String(); sok {
					if p, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
						n, ok = int64(p), true
					}
				}
			}
			if ok && n > 0 && n <= 1000 {
				return int(n)
			}
		}
		return 0
	}
	r.Ptime = ptimeKey("ptime")
	r.PtimeReverse = ptimeKey("ptime-reverse", "ptime reverse")
	if n, ok := limitKey(v); ok {
		r.Limit = n
		if n < 0 {
			r.Limit = -2 // negative: the engine refuses it
		}
	}
	return r, nil
}

// limitKey reads list's limit as rtpengine does: an integer, or a string
// that is one whole decimal integer; anything else is no limit given.
func limitKey(v bencode.Value) (int, bool) {
	x, ok := v.Get("limit")
	if !ok {
		return 0, false
	}
	if n, ok := x.Int(); ok {
		return int(n), true
	}
	if s, ok := x.String(); ok && s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return int(n), true
		}
	}
	return 0, false
}

func str2(v bencode.Value, key string) string {
	s, _ := v.GetString(key)
	return s
}

// statsInto writes query's keys (reference §1.9) into r, in rtpengine's
// order: created, created_us, last signal, SSRC, tags, totals. Each
// stream's stats carry rtpengine's packets, bytes and errors, then
// rtpkit's "kernel drops" and "SRTP failures".
func statsInto(r *bencode.Value, st *calls.CallStats) {
	r.Set("created", bencode.Int(st.Created.Unix()))
	r.Set("created_us", bencode.Int(int64(st.Created.Nanosecond()/1000)))
	r.Set("last signal", bencode.Int(st.LastSignal.Unix()))
	r.Set("SSRC", bencode.NewDict())
	tags := bencode.DictCap(len(st.Tags))
	for _, t := range st.Tags {
		d := bencode.DictCap(7)
		d.Set("tag", bencode.Str(t.Tag))
		if t.ViaBranch != "" {
			d.Set("via-branch", bencode.Str(t.ViaBranch))
		}
		if t.Label != "" {
			d.Set("label", bencode.Str(t.Label))
		}
		d.Set("created", bencode.Int(t.Created.Unix()))
		d.Set("subscriptions", subList(t.Subscriptions))
		d.Set("subscribers", subList(t.Subscribers))
		medias := bencode.List(make([]bencode.Value, 0, len(t.Medias))...)
		for _, m := range t.Medias {
			md := bencode.DictCap(5)
			md.Set("index", bencode.Int(int64(m.Index)))
			md.Set("type", bencode.Str(m.Type))
			if m.Protocol != "" {
				md.Set("protocol", bencode.Str(m.Protocol))
			}
			streams := bencode.List(make([]bencode.Value, 0, len(m.Streams))...)
			for _, s := range m.Streams {
				sd := bencode.DictCap(9)
				if s.LocalPort != 0 {
					sd.Set("local port", bencode.Int(int64(s.LocalPort)))
					sd.Set("local address", bencode.Str(s.LocalAddr.String()))
					sd.Set("family", bencode.Str(s.Family))
				}
				sd.Set("endpoint", endpointDict(s.Endpoint))
				sd.Set("advertised endpoint", endpointDict(s.Advertised))
				if s.CryptoSuite != "" {
					sd.Set("crypto suite", bencode.Str(s.CryptoSuite))
				}
				sd.Set("last packet", bencode.Int(s.LastPacket))
				sd.Set("flags", bencode.Strs(s.Flags...))
				if s.HasSSRC {
					sd.Set("SSRC", bencode.Int(int64(s.SSRC)))
				}
				sd.Set("stats", countersDict(s.Stats))
				streams.Append(sd)
			}
			md.Set("streams", streams)
			md.Set("flags", bencode.Strs(m.Flags...))
			medias.Append(md)
		}
		d.Set("medias", medias)
		tags.Set(t.Key(), d)
	}
	r.Set("tags", tags)
	r.Set("totals", bencode.NewDict(
		bencode.Pair{Key: "RTP", Value: countersDict(st.TotalRTP)},
		bencode.Pair{Key: "RTCP", Value: countersDict(st.TotalRTCP)}))
}

func subList(tags []string) bencode.Value {
	l := bencode.List(make([]bencode.Value, 0, len(tags))...)
	for _, t := range tags {
		l.Append(bencode.NewDict(bencode.Pair{Key: "tag", Value: bencode.Str(t)},
			bencode.Pair{Key: "type", Value: bencode.Str("offer/answer")}))
	}
	return l
}

func endpointDict(ap netip.AddrPort) bencode.Value {
	if !ap.IsValid() {
		return bencode.NewDict()
	}
	d := bencode.DictCap(3)
	fam := "IPv4"
	if ap.Addr().Is6() {
		fam = "IPv6"
	}
	d.Set("family", bencode.Str(fam))
	d.Set("address", bencode.Str(ap.Addr().String()))
	d.Set("port", bencode.Int(int64(ap.Port())))
	return d
}

func countersDict(c calls.Counters) bencode.Value {
	return bencode.NewDict(bencode.Pair{Key: "packets", Value: bencode.Int(int64(c.Packets))},
		bencode.Pair{Key: "bytes", Value: bencode.Int(int64(c.Bytes))},
		bencode.Pair{Key: "errors", Value: bencode.Int(int64(c.Errors))},
		bencode.Pair{Key: "kernel drops", Value: bencode.Int(int64(c.KernelDrops))},
		bencode.Pair{Key: "SRTP failures", Value: bencode.Int(int64(c.SRTPFailures))})
}

// codecOptions reads the codec options rtpkit carries out (strip, offer,
// except) from the codec dictionary and the codec-strip-X, codec-offer-X
// and codec-except-X flags, in the order given; "--" in a codec string
// stands for "=", as in rtpengine.
func codecOptions(dict bencode.Value, flags []string) calls.CodecOptions {
	var o calls.CodecOptions
	lists := map[string]*[]string{"strip": &o.Strip, "offer": &o.Offer, "except": &o.Except, "mask": &o.Mask, "transcode": &o.Transcode,
		"accept": &o.Accept, "consume": &o.Consume, "set": &o.Set}
	for key, dst := range lists {
		if v, ok := dict.Get(key); ok {
			if l, ok := v.StringList(); ok {
				for _, s := range l {
					*dst = append(*dst, strings.ReplaceAll(s, "--", "="))
				}
			}
		}
	}
	for _, f := range flags {
		for key, dst := range lists {
			if x, ok := strings.CutPrefix(f, "codec-"+key+"-"); ok && x != "" {
				*dst = append(*dst, strings.ReplaceAll(x, "--", "="))
			}
		}
		if x, ok := strings.CutPrefix(f, "transcode-"); ok && x != "" {
			o.Transcode = append(o.Transcode, strings.ReplaceAll(x, "--", "="))
		}
	}
	return o
}
