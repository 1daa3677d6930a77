package handoff

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func randomMsg(r *rand.Rand) Msg {
	strs := []string{"", "add", "remove", "udp", "w1", "call-1@example.com", "with space", `quo"te`, "back\\slash", "<b>&", "ünï", "\x01", "bad\xff"}
	str := func() string { return strs[r.IntN(len(strs))] }
	locals := []netip.AddrPort{{}, netip.MustParseAddrPort("127.0.0.1:30000"), netip.MustParseAddrPort("[2001:db8::5]:40000"),
		netip.MustParseAddrPort("[::ffff:10.0.0.1]:1"), netip.MustParseAddrPort("[fe80::1%eth0]:5"), netip.MustParseAddrPort("[fe80::1%a<b]:5")}
	pids := []int{0, 1, 4242, -3, 1 << 40}
	return Msg{Op: str(), Worker: str(), PID: pids[r.IntN(len(pids))], Local: locals[r.IntN(len(locals))], Network: str(), Call: str()}
}

// The hand-written codec writes what encoding/json writes and reads
// everything as encoding/json reads it; common messages take it.
func TestCodecMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	fast := 0
	for i := 0; i < 20000; i++ {
		m := randomMsg(r)
		got := testutil.CheckJSONCodec(t, m, encodeMsg, decodeMsg)
		if _, ok := parseMsg(got); ok {
			fast++
		}
	}
	if fast < 500 {
		t.Fatalf("only %d of 20000 messages took the fast decoder", fast)
	}
}

func TestCodecFastPath(t *testing.T) {
	for _, m := range []Msg{
		{Op: OpAdd, Local: netip.MustParseAddrPort("127.0.0.1:35014"), Network: "udp", Call: "bench-dn401ukkvy3h-0-0"},
		{Op: OpRemove, Local: netip.MustParseAddrPort("[2001:db8::1]:30001")},
		{Op: OpHello, Worker: "rtp-fwd-1", PID: 31337},
		{Op: OpSynced},
	} {
		b, ok := appendMsg(nil, &m)
		if !ok {
			t.Fatalf("%+v: encoder took encoding/json", m)
		}
		got, ok := parseMsg(b)
		if !ok || !reflect.DeepEqual(got, m) {
			t.Fatalf("%s: decoded %+v (fast %v), want %+v", b, got, ok, m)
		}
	}
}

// FuzzDecode: for any input Decode's codec agrees with encoding/json.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 30; i++ {
		m := randomMsg(r)
		b, _ := json.Marshal(&m)
		f.Add(b)
	}
	for _, s := range []string{`{}`, `null`, `{"op":"add","local":""}`, `{"OP":"add"}`, `{"op":"a","op":"b"}`, `{"op":"add","pid":01}`,
		`{"op":"add","pid":1e3}`, `{"op":"add","pid":-0}`, `{"op":"add","local":"1.2.3.4"}`, `{"op":"add"} `, `{"op":"add","call":"\u0041"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, errA := decodeMsg(data)
		var b Msg
		errB := json.Unmarshal(data, &b)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("%q: fast err %v, json err %v", data, errA, errB)
		}
		if errA == nil && a != b {
			t.Fatalf("%q:\nfast %+v\njson %+v", data, a, b)
		}
	})
}

func BenchmarkCodec(b *testing.B) {
	m := Msg{Op: OpAdd, Local: netip.MustParseAddrPort("127.0.0.1:35014"), Network: "udp", Call: "bench-dn401ukkvy3h-0-0"}
	data := m.Encode()
	b.Run("encode/fast", func(b *testing.B) {
		for b.Loop() {
			_ = m.Encode()
		}
	})
	b.Run("encode/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(&m)
		}
	})
	b.Run("decode/fast", func(b *testing.B) {
		for b.Loop() {
			_, _ = Decode(data)
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		for b.Loop() {
			var v Msg
			_ = json.Unmarshal(data, &v)
		}
	})
}
