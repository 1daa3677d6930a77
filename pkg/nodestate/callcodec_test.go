package nodestate

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// randomCall builds a record exercising every field, optional ones present
// or not, with strings that need escaping now and then.
func randomCall(r *rand.Rand) Call {
	strs := []string{"", "a", "call-1@example.com", "with space", `quo"te`, "back\\slash", "<html>&", "ünïcode", "\x01ctl", "bad\xffutf8", "line\u2028sep", "priv", "ext"}
	str := func() string { return strs[r.IntN(len(strs))] }
	locs := []*time.Location{time.UTC, time.Local, time.FixedZone("x", 3600), time.FixedZone("y", -5*3600-1800)}
	tm := func() time.Time {
		if r.IntN(5) == 0 {
			return time.Time{}
		}
		t := time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(locs[r.IntN(len(locs))])
		if r.IntN(3) == 0 {
			t = t.Truncate(time.Second)
		}
		return t
	}
	addrs := []netip.Addr{{}, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.44"), netip.MustParseAddr("2001:db8::5"),
		netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("fe80::2%we\"ird")}
	addr := func() netip.Addr { return addrs[r.IntN(len(addrs))] }
	ap := func() netip.AddrPort {
		a := addr()
		if !a.IsValid() {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(a, uint16(r.IntN(65536)))
	}
	n := func(max int) int { return r.IntN(max) }
	c := Call{Schema: n(3), ID: str(), Owner: str(), Foreign: n(2) == 0, Partition: str(), Source: str(),
		Created: tm(), LastSignal: tm(), DeleteAt: tm()}
	if n(6) > 0 {
		c.Legs = make([]Leg, n(3))
	}
	for i := range c.Legs {
		l := Leg{ID: n(5) - 1, Tag: str(), Label: str(), ViaBranch: str(), Peer: n(4) - 1, Family: n(7), Interface: str(), SDP: n(2) == 0, Created: tm()}
		if n(2) == 0 {
			l.Origin = &Origin{Username: str(), SessionID: str(), SessionName: str(), Pinned: n(8)}
			if n(2) == 0 {
				l.Origin.Version, l.Origin.Content = r.Uint64(), r.Uint64()
			}
		}
		if n(6) > 0 {
			l.Medias = make([]Media, n(3))
		}
		for j := range l.Medias {
			m := Media{Index: n(4), Type: str(), Protocol: str(), Interface: str(), Direction: str(), RTCPMux: n(2) == 0,
				Mid: str(), Ptime: n(40) - 5, Key: ap()}
			switch n(3) {
			case 0:
				m.PayloadTypes = []PayloadType{}
			case 1:
				for k := n(4); k >= 0; k-- {
					m.PayloadTypes = append(m.PayloadTypes, PayloadType{PT: uint8(n(256)), Encoding: str(), Clock: n(96000), Params: str(), Fmtp: str()})
				}
			}
			switch n(3) {
			case 0:
				m.Flags = []string{}
			case 1:
				for k := n(3); k >= 0; k-- {
					m.Flags = append(m.Flags, str())
				}
			}
			if n(2) == 0 {
				m.SDESIn = []string{str(), str()}[:1+n(2)]
			}
			if n(2) == 0 {
				m.SDESOut = []string{str()}
				m.SRTPInROC, m.SRTPOutROC = r.Uint32(), uint32(n(3))
			}
			switch n(3) {
			case 0:
				m.ICE = &ICE{Ufrag: str(), Pwd: str()}
			case 1:
				m.ICE = &ICE{Ufrag: str(), Pwd: str(), RemoteUfrag: str(), RemotePwd: str(), Controlling: n(2) == 0, Selected: ap(), Lite: n(2) == 0, Trickle: n(2) == 0}
				if n(2) == 0 {
					m.ICE.Candidates = []netip.AddrPort{ap(), ap()}[:1+n(2)]
					m.ICE.RTCPCandidates = []netip.AddrPort{ap()}
				}
			}
			switch n(3) {
			case 0:
				m.DTLS = &DTLS{Setup: str()}
			case 1:
				m.DTLS = &DTLS{Setup: str(), Fingerprint: str(), Hash: str(), KeyIn: str(), KeyOut: str()}
			}
			if n(6) > 0 {
				m.Streams = make([]Stream, n(3))
			}
			for k := range m.Streams {
				m.Streams[k] = Stream{Component: n(3), Local: ap(), Advertised: addr(), Signalled: ap(), Learned: ap()}
				if n(2) == 0 {
					m.Streams[k].Gen = r.Uint64()
				}
			}
			if n(3) == 0 {
				m.Alt = make([]Stream, 1+n(2))
				for k := range m.Alt {
					m.Alt[k] = Stream{Component: 1 + k, Local: ap(), Gen: r.Uint64()}
				}
			}
			l.Medias[j] = m
		}
		c.Legs[i] = l
	}
	return c
}

func TestCallCodecMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for i := 0; i < 20000; i++ {
		c := randomCall(r)
		got := testutil.CheckJSONCodec(t, c, marshalCall, func(b []byte) (Call, error) {
			var v Call
			err := unmarshalCall(b, &v)
			return v, err
		})
		d := decoder{b: got}
		var v Call
		if d.call(&v) == nil {
			fast++
		}
	}
	if fast < 100 {
		t.Fatalf("only %d of 20000 records took the fast decoder", fast)
	}
}

// typicalCall is a record as ng-ctl writes it after an answer.
func typicalCall() Call {
	ts := time.Date(2026, 11, 25, 3, 4, 5, 123456789, time.UTC)
	c := Call{Schema: 1, ID: "c1", Owner: "vm", Created: ts, LastSignal: ts, Legs: []Leg{
		{ID: 0, Tag: "A", Peer: 1, Family: 4, Interface: "default", SDP: true, Created: ts,
			Origin: &Origin{Username: "alice", Pinned: PinnedUsername, Version: 3, Content: 14695981039346656037}, Medias: []Media{{
				Index: 1, Type: "audio", Protocol: "RTP/AVP", Interface: "default", Direction: "sendrecv",
				PayloadTypes: []PayloadType{{PT: 0, Encoding: "PCMU", Clock: 8000}, {PT: 101, Encoding: "telephone-event", Clock: 8000, Fmtp: "0-16"}},
				Streams: []Stream{{Component: 1, Local: netip.MustParseAddrPort("127.0.0.1:30000"), Signalled: netip.MustParseAddrPort("192.0.2.1:4000"), Gen: 12839073272691802125},
					{Component: 2, Local: netip.MustParseAddrPort("127.0.0.1:30001"), Gen: 12839073272691802125}},
				Alt:   []Stream{{Component: 1, Local: netip.MustParseAddrPort("[::1]:30000"), Gen: 12839073272691802126}},
				Flags: []string{"strict-source"}, Key: netip.MustParseAddrPort("192.0.2.1:4000"),
			}}},
		{ID: 1, Peer: 0, Created: ts, Medias: []Media{}},
	}}
	return c
}

// A record as ng-ctl writes it takes the fast path both ways.
func TestCallCodecFastPath(t *testing.T) {
	c := typicalCall()
	b, ok := appendCall(nil, &c)
	if !ok {
		t.Fatal("encoder took the slow path")
	}
	var got Call
	d := decoder{b: b}
	if err := d.call(&got); err != nil || d.i != len(b) {
		t.Fatalf("decoder took the slow path (%v) on %s", err, b)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip:\n%+v\n%+v", got, c)
	}
}

// Generations over uint64's whole range take the fast decoder; overflow
// and signs are left to encoding/json, with its result.
func TestCallCodecGenerations(t *testing.T) {
	for _, tc := range []struct {
		gen  string
		want uint64
		fast bool
	}{
		{"0", 0, true},
		{"77", 77, true},
		{"9223372036854775808", 1 << 63, true},
		{"12839073272691802125", 12839073272691802125, true},
		{"18446744073709551615", 1<<64 - 1, true},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"100000000000000000000", 0, false},
		{"-1", 0, false},
		{"01", 0, false},
		{"1e3", 0, false},
	} {
		data := []byte(`{"legs":[{"medias":[{"streams":[{"gen":` + tc.gen + `}]}]}]}`)
		d := decoder{b: data}
		var v Call
		err := d.call(&v)
		if fast := err == nil; fast != tc.fast {
			t.Errorf("gen %s: fast decoder %v, want %v", tc.gen, fast, tc.fast)
		}
		if err == nil && v.Legs[0].Medias[0].Streams[0].Gen != tc.want {
			t.Errorf("gen %s: got %d", tc.gen, v.Legs[0].Medias[0].Streams[0].Gen)
		}
		var a, b Call
		errA, errB := unmarshalCall(data, &a), json.Unmarshal(data, &b)
		if (errA == nil) != (errB == nil) || !reflect.DeepEqual(a, b) {
			t.Errorf("gen %s: decodes to %+v (%v), encoding/json to %+v (%v)", tc.gen, a, errA, b, errB)
		}
	}
}

// FuzzCallDecode: for any input the record decoder agrees with
// encoding/json (same error or not, same value).
func FuzzCallDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 40; i++ {
		c := randomCall(r)
		b, _ := json.Marshal(&c)
		f.Add(b)
	}
	for _, s := range []string{`{}`, `null`, `{"schema":1,"legs":null}`, `{"ID":"x"}`, `{"id":"a","id":"b"}`, `{"legs":[{"medias":[{"payload_types":[{"pt":-0}]}]}]}`,
		`{"created":"2026-01-01T00:00:00Z"} `, `{"legs":[{"medias":[{"streams":[{"gen":18446744073709551615}]}]}]}`,
		`{"legs":[{"medias":[{"streams":[{"gen":18446744073709551616}]}]}]}`, `{"legs":[{"medias":[{"streams":[{"gen":-1}]}]}]}`, `{"schema":01}`, `{"schema":1.0}`, `{"legs":[{"id":1},]}`, ` {"foreign":true}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b Call
		errA := unmarshalCall(data, &a)
		errB := json.Unmarshal(data, &b)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("%q: fast err %v, json err %v", data, errA, errB)
		}
		if errA == nil && !reflect.DeepEqual(a, b) {
			t.Fatalf("%q:\nfast %+v\njson %+v", data, a, b)
		}
	})
}

func BenchmarkCallCodec(b *testing.B) {
	c := typicalCall()
	c.Legs[1].Medias = c.Legs[0].Medias
	data, _ := json.Marshal(&c)
	b.Run("encode/fast", func(b *testing.B) {
		for b.Loop() {
			_, _ = marshalCall(&c)
		}
	})
	b.Run("encode/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(&c)
		}
	})
	b.Run("decode/fast", func(b *testing.B) {
		for b.Loop() {
			var v Call
			_ = unmarshalCall(data, &v)
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		for b.Loop() {
			var v Call
			_ = json.Unmarshal(data, &v)
		}
	})
}
