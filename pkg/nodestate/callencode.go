package nodestate

// The call record's encoder: the bytes encoding/json writes for a Call,
// appended by hand (see callcodec.go).

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"time"
)

// appendCall appends c's JSON; ok is false when a value needs
// encoding/json's general path (a time outside years 0-9999).
func appendCall(b []byte, c *Call) (_ []byte, ok bool) {
	b = append(b, `{"schema":`...)
	b = strconv.AppendInt(b, int64(c.Schema), 10)
	b = appendKeyString(b, `,"id":`, c.ID)
	b = appendKeyString(b, `,"owner":`, c.Owner)
	if c.Foreign {
		b = append(b, `,"foreign":true`...)
	}
	if c.Partition != "" {
		b = appendKeyString(b, `,"partition":`, c.Partition)
	}
	if c.Source != "" {
		b = appendKeyString(b, `,"source":`, c.Source)
	}
	if b, ok = appendKeyTime(b, `,"created":`, c.Created); !ok {
		return b, false
	}
	if b, ok = appendKeyTime(b, `,"last_signal":`, c.LastSignal); !ok {
		return b, false
	}
	if !c.DeleteAt.IsZero() {
		if b, ok = appendKeyTime(b, `,"delete_at":`, c.DeleteAt); !ok {
			return b, false
		}
	}
	b = append(b, `,"legs":`...)
	if c.Legs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range c.Legs {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendLeg(b, &c.Legs[i]); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func appendLeg(b []byte, l *Leg) (_ []byte, ok bool) {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(l.ID), 10)
	if l.Tag != "" {
		b = appendKeyString(b, `,"tag":`, l.Tag)
	}
	if l.Label != "" {
		b = appendKeyString(b, `,"label":`, l.Label)
	}
	if l.ViaBranch != "" {
		b = appendKeyString(b, `,"via_branch":`, l.ViaBranch)
	}
	b = append(b, `,"peer":`...)
	b = strconv.AppendInt(b, int64(l.Peer), 10)
	if l.Family != 0 {
		b = append(b, `,"family":`...)
		b = strconv.AppendInt(b, int64(l.Family), 10)
	}
	if l.Interface != "" {
		b = appendKeyString(b, `,"interface":`, l.Interface)
	}
	if l.SDP {
		b = append(b, `,"sdp":true`...)
	}
	if b, ok = appendKeyTime(b, `,"created":`, l.Created); !ok {
		return b, false
	}
	if o := l.Origin; o != nil {
		b = appendOrigin(b, o)
	}
	b = append(b, `,"medias":`...)
	if l.Medias == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range l.Medias {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendMedia(b, &l.Medias[i])
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func appendOrigin(b []byte, o *Origin) []byte {
	b = append(b, `,"origin":{`...)
	sep := ""
	key := func(k string) {
		b = append(b, sep...)
		b = append(b, k...)
		sep = ","
	}
	if o.Username != "" {
		key(`"username":`)
		b = appendString(b, o.Username)
	}
	if o.SessionID != "" {
		key(`"session_id":`)
		b = appendString(b, o.SessionID)
	}
	if o.SessionName != "" {
		key(`"session_name":`)
		b = appendString(b, o.SessionName)
	}
	if o.Pinned != 0 {
		key(`"pinned":`)
		b = strconv.AppendInt(b, int64(o.Pinned), 10)
	}
	if o.Version != 0 {
		key(`"version":`)
		b = strconv.AppendUint(b, o.Version, 10)
	}
	if o.Content != 0 {
		key(`"content":`)
		b = strconv.AppendUint(b, o.Content, 10)
	}
	return append(b, '}')
}

func appendMedia(b []byte, m *Media) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(m.Index), 10)
	b = appendKeyString(b, `,"type":`, m.Type)
	b = appendKeyString(b, `,"protocol":`, m.Protocol)
	b = appendKeyString(b, `,"interface":`, m.Interface)
	if m.Direction != "" {
		b = appendKeyString(b, `,"direction":`, m.Direction)
	}
	if m.RTCPMux {
		b = append(b, `,"rtcp_mux":true`...)
	}
	if len(m.PayloadTypes) > 0 {
		b = append(b, `,"payload_types":[`...)
		for i := range m.PayloadTypes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPayloadType(b, &m.PayloadTypes[i])
		}
		b = append(b, ']')
	}
	b = append(b, `,"streams":`...)
	if m.Streams == nil {
		b = append(b, "null"...)
	} else {
		b = appendStreams(b, m.Streams)
	}
	if len(m.Alt) > 0 {
		b = append(b, `,"alt":`...)
		b = appendStreams(b, m.Alt)
	}
	if len(m.Flags) > 0 {
		b = append(b, `,"flags":[`...)
		for i, f := range m.Flags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f)
		}
		b = append(b, ']')
	}
	if m.Mid != "" {
		b = appendKeyString(b, `,"mid":`, m.Mid)
	}
	if m.Ptime != 0 {
		b = append(b, `,"ptime":`...)
		b = strconv.AppendInt(b, int64(m.Ptime), 10)
	}
	if m.Key != (netip.AddrPort{}) {
		b = appendKeyAddrPort(b, `,"key":`, m.Key)
	}
	b = appendStrings(b, `,"sdes_in":`, m.SDESIn)
	b = appendStrings(b, `,"sdes_out":`, m.SDESOut)
	if m.SRTPInROC != 0 {
		b = append(b, `,"srtp_in_roc":`...)
		b = strconv.AppendUint(b, uint64(m.SRTPInROC), 10)
	}
	if m.SRTPOutROC != 0 {
		b = append(b, `,"srtp_out_roc":`...)
		b = strconv.AppendUint(b, uint64(m.SRTPOutROC), 10)
	}
	if m.ICE != nil {
		b = appendKeyString(b, `,"ice":{"ufrag":`, m.ICE.Ufrag)
		b = appendKeyString(b, `,"pwd":`, m.ICE.Pwd)
		if m.ICE.RemoteUfrag != "" {
			b = appendKeyString(b, `,"remote_ufrag":`, m.ICE.RemoteUfrag)
		}
		if m.ICE.RemotePwd != "" {
			b = appendKeyString(b, `,"remote_pwd":`, m.ICE.RemotePwd)
		}
		if m.ICE.Controlling {
			b = append(b, `,"controlling":true`...)
		}
		if m.ICE.Lite {
			b = append(b, `,"lite":true`...)
		}
		if m.ICE.Selected != (netip.AddrPort{}) {
			b = appendKeyAddrPort(b, `,"selected":`, m.ICE.Selected)
		}
		if m.ICE.Trickle {
			b = append(b, `,"trickle":true`...)
		}
		b = appendAddrPorts(b, `,"candidates":`, m.ICE.Candidates)
		b = appendAddrPorts(b, `,"rtcp_candidates":`, m.ICE.RTCPCandidates)
		b = append(b, '}')
	}
	if m.DTLS != nil {
		b = appendKeyString(b, `,"dtls":{"setup":`, m.DTLS.Setup)
		if m.DTLS.Fingerprint != "" {
			b = appendKeyString(b, `,"fingerprint":`, m.DTLS.Fingerprint)
		}
		if m.DTLS.Hash != "" {
			b = appendKeyString(b, `,"hash":`, m.DTLS.Hash)
		}
		if m.DTLS.KeyIn != "" {
			b = appendKeyString(b, `,"key_in":`, m.DTLS.KeyIn)
		}
		if m.DTLS.KeyOut != "" {
			b = appendKeyString(b, `,"key_out":`, m.DTLS.KeyOut)
		}
		b = append(b, '}')
	}
	if m.Transcode != nil {
		b = append(b, `,"transcode":`...)
		b = appendPayloadType(b, m.Transcode)
	}
	return append(b, '}')
}

// appendPayloadType appends p as a JSON object.
func appendPayloadType(b []byte, p *PayloadType) []byte {
	b = append(b, `{"pt":`...)
	b = strconv.AppendUint(b, uint64(p.PT), 10)
	b = appendKeyString(b, `,"encoding":`, p.Encoding)
	b = append(b, `,"clock":`...)
	b = strconv.AppendInt(b, int64(p.Clock), 10)
	if p.Params != "" {
		b = appendKeyString(b, `,"params":`, p.Params)
	}
	if p.Fmtp != "" {
		b = appendKeyString(b, `,"fmtp":`, p.Fmtp)
	}
	return append(b, '}')
}

// appendStrings appends key and a JSON array of l, nothing if l is empty
// (omitempty).
func appendStrings(b []byte, key string, l []string) []byte {
	return appendArray(b, key, l, appendString)
}

// appendArray appends key and a JSON array of l, each element by elem,
// nothing if l is empty (omitempty).
func appendArray[T any](b []byte, key string, l []T, elem func([]byte, T) []byte) []byte {
	if len(l) == 0 {
		return b
	}
	b = append(b, key...)
	b = append(b, '[')
	for i, v := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = elem(b, v)
	}
	return append(b, ']')
}

func appendKeyString(b []byte, key, s string) []byte {
	return appendString(append(b, key...), s)
}

// appendString appends s as a JSON string the way encoding/json does:
// strings of plain printable ASCII go as they are, anything else (escapes,
// HTML characters, non-ASCII, invalid UTF-8) through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainByte reports whether c stands for itself inside a JSON string as
// encoding/json writes it.
func plainByte(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

func appendKeyTime(b []byte, key string, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, false
	}
	b = append(b, key...)
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

func appendKeyAddrPort(b []byte, key string, ap netip.AddrPort) []byte {
	b = append(b, key...)
	if ap.Addr().Zone() != "" {
		t, _ := ap.MarshalText() // never fails
		return appendString(b, string(t))
	}
	b = append(b, '"')
	if ap.Addr().IsValid() {
		b = ap.AppendTo(b)
	}
	return append(b, '"')
}

// appendAddrPorts appends key and a JSON array of endpoints, nothing if
// there are none (omitempty).
func appendAddrPorts(b []byte, key string, aps []netip.AddrPort) []byte {
	return appendArray(b, key, aps, func(b []byte, ap netip.AddrPort) []byte { return appendKeyAddrPort(b, "", ap) })
}

// appendStreams appends a media's streams as a JSON array.
func appendStreams(b []byte, ss []Stream) []byte {
	b = append(b, '[')
	for i := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		s := &ss[i]
		b = append(b, `{"component":`...)
		b = strconv.AppendInt(b, int64(s.Component), 10)
		b = appendKeyAddrPort(b, `,"local":`, s.Local)
		if s.Advertised != (netip.Addr{}) {
			b = append(b, `,"advertised":`...)
			if s.Advertised.Zone() != "" {
				b = appendString(b, s.Advertised.String())
			} else {
				b = append(b, '"')
				b = s.Advertised.AppendTo(b)
				b = append(b, '"')
			}
		}
		if s.Signalled != (netip.AddrPort{}) {
			b = appendKeyAddrPort(b, `,"signalled":`, s.Signalled)
		}
		if s.Gen != 0 {
			b = append(b, `,"gen":`...)
			b = strconv.AppendUint(b, s.Gen, 10)
		}
		if s.Learned != (netip.AddrPort{}) {
			b = appendKeyAddrPort(b, `,"learned":`, s.Learned)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	return b
}
