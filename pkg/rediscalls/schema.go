// Package rediscalls is rtpkit's Redis schema for calls: how a call is
// written to a partition, read back, moved from one partition to another
// and listed, and how keyspace notifications name it.
//
// Every key starts with a prefix (KeyPrefix); nothing outside it is ever
// read, changed or deleted. Per call:
//
//	<prefix>call:<call-id>      hash: schema, owner, rev, updated, medias,
//	                            call (the record as JSON, without payload
//	                            types), endpoints (learned peers, JSON)
//	<prefix>pt:<call-id>:<n>    hash per media (n counts the call's medias
//	                            from 0, leg by leg): field = position in the
//	                            m= line from 0, value = pt/encoding/clock
//	                            [/params[/fmtp]]
//	<prefix>moved:<call-id>     string: the node that took the call over
//	                            from this partition (a tombstone that stops
//	                            an old owner from writing it again)
//
// Every change is one Lua script, so it is atomic: a reader (which also
// reads with a script) never sees half a call. Each write refreshes the
// expiry of all the call's keys.
package rediscalls

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// Schema is the version of the layout; a reader skips (and never deletes)
// a call written with a newer one.
const Schema = 1

// KeyPrefix starts every key rtpkit writes.
const KeyPrefix = "rtpkit:v1:"

// Partition is where one node's calls live. With standalone or Sentinel
// Redis it is a database number; the type keeps the notion abstract so
// that a key prefix could serve Redis Cluster, which has one database.
type Partition struct {
	DB int
}

// String names the partition in logs and records ("db:3").
func (p Partition) String() string { return "db:" + strconv.Itoa(p.DB) }

// ParsePartition parses what String writes.
func ParsePartition(s string) (Partition, error) {
	n, ok := strings.CutPrefix(s, "db:")
	if !ok {
		return Partition{}, fmt.Errorf("partition %q: want db:N", s)
	}
	db, err := strconv.Atoi(n)
	if err != nil || db < 0 {
		return Partition{}, fmt.Errorf("partition %q: bad database number", s)
	}
	return Partition{DB: db}, nil
}

// Pattern is the PSUBSCRIBE pattern of the partition's call keys.
func (p Partition) Pattern() string {
	return "__keyspace@" + strconv.Itoa(p.DB) + "__:" + KeyPrefix + "call:*"
}

// ParseChannel returns the partition and call id of a keyspace
// notification channel for a call key; ok is false for anything else.
func ParseChannel(ch string) (p Partition, id string, ok bool) {
	rest, ok := strings.CutPrefix(ch, "__keyspace@")
	if !ok {
		return p, "", false
	}
	db, key, ok := strings.Cut(rest, "__:")
	if !ok {
		return p, "", false
	}
	n, err := strconv.Atoi(db)
	if err != nil || n < 0 {
		return p, "", false
	}
	id, ok = strings.CutPrefix(key, KeyPrefix+"call:")
	if !ok || id == "" {
		return p, "", false
	}
	return Partition{DB: n}, id, true
}

// CallKey is the key of a call's main hash.
func CallKey(id string) string { return KeyPrefix + "call:" + id }

// PayloadTypesKey is the key of the payload type hash of the call's n-th
// media (from 0, leg by leg).
func PayloadTypesKey(id string, n int) string {
	return KeyPrefix + "pt:" + id + ":" + strconv.Itoa(n)
}

// MovedKey is the key of the tombstone left when the call moved away.
func MovedKey(id string) string { return KeyPrefix + "moved:" + id }

// Entry is a call as stored in Redis.
type Entry struct {
	// Call is the record, payload types included; node-local fields
	// (Foreign, Source, Partition, generations, Learned) are not stored.
	Call nodestate.Call
	// Endpoints are the peers learned from packets, by our local socket.
	Endpoints map[netip.AddrPort]netip.AddrPort
	// Rev counts the writes of the call in its partition (set on read).
	Rev int64
	// Updated is when the writer wrote it.
	Updated time.Time
}

// encoded is an Entry in the script's argument form.
type encoded struct {
	call, endpoints, pts string
}

// encode splits the entry into the stored record (payload types out,
// node-local fields cleared), the endpoints and the payload types.
func encode(e *Entry) (encoded, error) {
	if err := CheckLimits(&e.Call); err != nil {
		return encoded{}, err
	}
	c := e.Call
	c.Foreign, c.Source, c.Partition = false, "", ""
	c.Legs = make([]nodestate.Leg, len(e.Call.Legs))
	var pts [][]string
	for i, l := range e.Call.Legs {
		l.Medias = append([]nodestate.Media(nil), l.Medias...)
		for j := range l.Medias {
			m := &l.Medias[j]
			vals := make([]string, len(m.PayloadTypes))
			for k, pt := range m.PayloadTypes {
				vals[k] = pt.String()
			}
			pts = append(pts, vals)
			m.PayloadTypes = nil
			m.Streams = append([]nodestate.Stream(nil), m.Streams...)
			for k := range m.Streams {
				m.Streams[k].Gen = 0
				m.Streams[k].Learned = netip.AddrPort{}
			}
			if len(m.Alt) > 0 {
				m.Alt = append([]nodestate.Stream(nil), m.Alt...)
				for k := range m.Alt {
					m.Alt[k].Gen = 0
				}
			}
		}
		c.Legs[i] = l
	}
	if pts == nil {
		pts = [][]string{}
	}
	var out encoded
	b, err := json.Marshal(c)
	if err != nil {
		return out, fmt.Errorf("encode call %q: %w", c.ID, err)
	}
	out.call = string(b)
	eps := make(map[string]string, len(e.Endpoints))
	for l, r := range e.Endpoints {
		eps[l.String()] = r.String()
	}
	if b, err = json.Marshal(eps); err != nil {
		return out, fmt.Errorf("encode call %q endpoints: %w", c.ID, err)
	}
	out.endpoints = string(b)
	if b, err = json.Marshal(pts); err != nil {
		return out, fmt.Errorf("encode call %q payload types: %w", c.ID, err)
	}
	out.pts = string(b)
	return out, nil
}

// ErrNewerSchema marks a call written by a newer rtpkit.
var ErrNewerSchema = fmt.Errorf("written with a newer schema than %d", Schema)

// decode builds an Entry from the call hash and the payload type hashes.
func decode(id string, h map[string]string, pts []map[string]string) (*Entry, error) {
	if s, err := strconv.Atoi(h["schema"]); err != nil {
		return nil, fmt.Errorf("call %q: bad schema %q", id, h["schema"])
	} else if s > Schema {
		return nil, fmt.Errorf("call %q: schema %d: %w", id, s, ErrNewerSchema)
	}
	if len(id) > MaxIDLen {
		return nil, fmt.Errorf("call id of %d bytes, at most %d: %w", len(id), MaxIDLen, ErrOverLimit)
	}
	if n, _ := strconv.Atoi(h["medias"]); n > MaxMedias || len(pts) > MaxMedias {
		return nil, fmt.Errorf("call %q: medias %q, at most %d: %w", id, h["medias"], MaxMedias, ErrOverLimit)
	}
	e := &Entry{}
	if err := json.Unmarshal([]byte(h["call"]), &e.Call); err != nil {
		return nil, fmt.Errorf("call %q: record: %w", id, err)
	}
	if e.Call.ID != id {
		return nil, fmt.Errorf("call %q: record names call %q", id, e.Call.ID)
	}
	if err := e.Call.Validate(); err != nil {
		return nil, err
	}
	if o := h["owner"]; o != "" {
		e.Call.Owner = o
	}
	if err := CheckLimits(&e.Call); err != nil {
		return nil, err
	}
	e.Rev, _ = strconv.ParseInt(h["rev"], 10, 64)
	if ms, err := strconv.ParseInt(h["updated"], 10, 64); err == nil {
		e.Updated = time.UnixMilli(ms)
	}
	if s := h["endpoints"]; s != "" {
		var eps map[string]string
		if err := json.Unmarshal([]byte(s), &eps); err != nil {
			return nil, fmt.Errorf("call %q: endpoints: %w", id, err)
		}
		if len(eps) > MaxMedias*MaxStreams {
			return nil, fmt.Errorf("call %q: %d learned endpoints, at most %d: %w", id, len(eps), MaxMedias*MaxStreams, ErrOverLimit)
		}
		e.Endpoints = make(map[netip.AddrPort]netip.AddrPort, len(eps))
		for l, r := range eps {
			la, err1 := netip.ParseAddrPort(l)
			ra, err2 := netip.ParseAddrPort(r)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("call %q: endpoint %q→%q unreadable", id, l, r)
			}
			e.Endpoints[la] = ra
		}
	}
	n := 0
	for i := range e.Call.Legs {
		for j := range e.Call.Legs[i].Medias {
			m := &e.Call.Legs[i].Medias[j]
			m.PayloadTypes = nil
			if n < len(pts) {
				list, err := payloadTypes(pts[n])
				if err != nil {
					return nil, fmt.Errorf("call %q media %d: %w", id, n, err)
				}
				m.PayloadTypes = list
			}
			n++
		}
	}
	return e, nil
}

// payloadTypes orders a payload type hash by its position fields.
func payloadTypes(h map[string]string) ([]nodestate.PayloadType, error) {
	type item struct {
		pos int
		pt  nodestate.PayloadType
	}
	items := make([]item, 0, len(h))
	for k, v := range h {
		pos, err := strconv.Atoi(k)
		if err != nil {
			return nil, fmt.Errorf("payload type position %q", k)
		}
		pt, err := nodestate.ParsePayloadType(v)
		if err != nil {
			return nil, err
		}
		items = append(items, item{pos, pt})
	}
	if len(items) == 0 {
		return nil, nil
	}
	sort.Slice(items, func(a, b int) bool { return items[a].pos < items[b].pos })
	out := make([]nodestate.PayloadType, len(items))
	for i, it := range items {
		out[i] = it.pt
	}
	return out, nil
}

// Digest summarises what the entry stores (record, endpoints, payload
// types; not Rev or Updated), to tell whether a write or a restore would
// change anything.
func Digest(e *Entry) uint64 {
	enc, err := encode(e)
	if err != nil {
		return 0
	}
	h := fnv.New64a()
	for _, s := range []string{enc.call, enc.endpoints, enc.pts} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}
