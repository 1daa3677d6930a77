package rediscalls

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func testCall(id string, ptsPerMedia ...[]nodestate.PayloadType) nodestate.Call {
	c := nodestate.Call{Schema: nodestate.CallSchema, ID: id, Owner: "a", Created: time.Unix(1700000000, 0).UTC(),
		LastSignal: time.Unix(1700000001, 0).UTC()}
	for i := range 2 {
		l := nodestate.Leg{ID: i, Tag: []string{"ft", "tt"}[i], Peer: 1 - i, Family: 4, Interface: "default"}
		for j, pts := range ptsPerMedia {
			base := uint16(30000 + 100*i + 10*j)
			l.Medias = append(l.Medias, nodestate.Media{Index: j + 1, Type: "audio", Protocol: "RTP/AVP", Interface: "default",
				PayloadTypes: pts, Streams: []nodestate.Stream{
					{Component: 1, Local: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), base), Gen: 77,
						Signalled: netip.MustParseAddrPort("192.0.2.1:4000")},
					{Component: 2, Local: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), base+1), Gen: 77},
				}})
		}
		c.Legs = append(c.Legs, l)
	}
	return c
}

var (
	pcmu  = nodestate.PayloadType{PT: 0, Encoding: "PCMU", Clock: 8000}
	opus  = nodestate.PayloadType{PT: 96, Encoding: "opus", Clock: 48000, Params: "2", Fmtp: "useinbandfec=1;x=a/b"}
	dtmf  = nodestate.PayloadType{PT: 101, Encoding: "telephone-event", Clock: 8000, Fmtp: "0-16"}
	ctx   = context.Background()
	partA = Partition{DB: 1}
	partB = Partition{DB: 2}
)

func newStore(t *testing.T) (*Store, *testutil.Redis) {
	t.Helper()
	r := testutil.StartRedis(t, testutil.RedisOptions{})
	rdb := r.Client(0)
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, time.Hour)
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return s, r
}

func apply(t *testing.T, s *Store, ops ...Op) []error {
	t.Helper()
	res, err := s.Apply(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func read1(t *testing.T, s *Store, p Partition, id string) (*Entry, string) {
	t.Helper()
	e, moved, errs, err := s.Read(ctx, p, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	return e[0], moved[0]
}

func TestWriteReadRoundTrip(t *testing.T) {
	s, r := newStore(t)
	c := testCall("call-1@host", []nodestate.PayloadType{pcmu, opus, dtmf}, nil)
	learned := map[netip.AddrPort]netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:30000"): netip.MustParseAddrPort("198.51.100.7:5004")}
	if res := apply(t, s, Op{Kind: OpWrite, Part: partA, ID: c.ID, Entry: &Entry{Call: c, Endpoints: learned, Updated: time.UnixMilli(1700000002000)}}); res[0] != nil {
		t.Fatal(res[0])
	}
	// The payload types are a hash per media: position → pt/enc/clock[/params[/fmtp]].
	db := r.Client(partA.DB)
	defer db.Close()
	got, err := db.HGetAll(ctx, PayloadTypesKey(c.ID, 0)).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"0": "0/PCMU/8000", "1": "96/opus/48000/2/useinbandfec=1;x=a/b", "2": "101/telephone-event/8000//0-16"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HGETALL pt hash = %v, want %v", got, want)
	}
	if n, _ := db.Exists(ctx, PayloadTypesKey(c.ID, 1)).Result(); n != 0 {
		t.Errorf("a media without payload types has a hash")
	}
	for _, k := range []string{CallKey(c.ID), PayloadTypesKey(c.ID, 0)} {
		if ttl, _ := db.TTL(ctx, k).Result(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("TTL %s = %v", k, ttl)
		}
	}
	e, moved := read1(t, s, partA, c.ID)
	if e == nil || moved != "" {
		t.Fatalf("read: %v, moved %q", e, moved)
	}
	// Node-local fields are not stored.
	var wantCall nodestate.Call
	if b, err := json.Marshal(c); err != nil || json.Unmarshal(b, &wantCall) != nil {
		t.Fatal(err)
	}
	for i := range wantCall.Legs {
		for j := range wantCall.Legs[i].Medias {
			for k := range wantCall.Legs[i].Medias[j].Streams {
				wantCall.Legs[i].Medias[j].Streams[k].Gen = 0
			}
		}
	}
	if !reflect.DeepEqual(e.Call, wantCall) {
		t.Errorf("read call\n%+v\nwant\n%+v", e.Call, wantCall)
	}
	if !reflect.DeepEqual(e.Endpoints, learned) || e.Rev != 1 || e.Updated.UnixMilli() != 1700000002000 {
		t.Errorf("endpoints %v rev %d updated %v", e.Endpoints, e.Rev, e.Updated)
	}
	if c.Legs[0].Medias[0].Streams[0].Gen != 77 {
		t.Errorf("encode changed the caller's record")
	}

	// A re-write with fewer medias removes the hashes it no longer has.
	c2 := testCall(c.ID, []nodestate.PayloadType{dtmf})
	c2.Legs = c2.Legs[:1]
	apply(t, s, Op{Kind: OpWrite, Part: partA, ID: c.ID, Entry: &Entry{Call: c2}})
	keys, _ := db.Keys(ctx, "*").Result()
	sort.Strings(keys)
	if want := []string{CallKey(c.ID), PayloadTypesKey(c.ID, 0)}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys after re-write %v, want %v", keys, want)
	}
	if e, _ := read1(t, s, partA, c.ID); e.Rev != 2 || len(e.Call.Legs) != 1 || !reflect.DeepEqual(e.Call.Legs[0].Medias[0].PayloadTypes, []nodestate.PayloadType{dtmf}) {
		t.Errorf("re-read %+v", e)
	}
}

func TestDeleteMoveAndForeignKeys(t *testing.T) {
	s, r := newStore(t)
	a, b := r.Client(partA.DB), r.Client(partB.DB)
	defer a.Close()
	defer b.Close()
	// Keys that are not ours, in both databases, named like ours.
	foreign := []string{"call-1", "rtpkit:v2:call:call-1", "other:rtpkit:v1:call:x"}
	for _, k := range foreign {
		a.Set(ctx, k, "theirs", 0)
		b.Set(ctx, k, "theirs", 0)
	}
	c := testCall("call-1", []nodestate.PayloadType{pcmu})
	apply(t, s, Op{Kind: OpWrite, Part: partA, ID: c.ID, Entry: &Entry{Call: c}})

	var ids []string
	if err := s.Scan(ctx, partA, func(batch []string) error { ids = append(ids, batch...); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"call-1"}) {
		t.Errorf("scan = %v", ids)
	}

	// B takes the call over: it leaves A's partition in one step, with a
	// tombstone that stops A from writing it again.
	c.Owner = "b"
	if res := apply(t, s, Op{Kind: OpMove, Part: partB, From: partA, ID: c.ID, Entry: &Entry{Call: c}}); res[0] != nil {
		t.Fatal(res[0])
	}
	if e, moved := read1(t, s, partA, c.ID); e != nil || moved != "b" {
		t.Errorf("old partition: %v, moved %q", e, moved)
	}
	if e, _ := read1(t, s, partB, c.ID); e == nil || e.Call.Owner != "b" {
		t.Errorf("new partition: %+v", e)
	}
	c.Owner = "a"
	if res := apply(t, s, Op{Kind: OpWrite, Part: partA, ID: c.ID, Entry: &Entry{Call: c}}); !errors.Is(res[0], ErrMoved) {
		t.Errorf("old owner's write: %v, want ErrMoved", res[0])
	}
	if n, _ := a.Exists(ctx, CallKey(c.ID)).Result(); n != 0 {
		t.Errorf("old owner's write resurrected the call")
	}
	// Moving back clears the tombstone.
	if res := apply(t, s, Op{Kind: OpMove, Part: partA, From: partB, ID: c.ID, Entry: &Entry{Call: c}}); res[0] != nil {
		t.Fatal(res[0])
	}
	if e, moved := read1(t, s, partA, c.ID); e == nil || moved != "" {
		t.Errorf("moved back: %v, tombstone %q", e, moved)
	}
	apply(t, s, Op{Kind: OpDelete, Part: partA, ID: c.ID})
	if e, _ := read1(t, s, partA, c.ID); e != nil {
		t.Errorf("deleted call still there")
	}
	for _, k := range foreign {
		for name, db := range map[string]*redis.Client{"A": a, "B": b} {
			if v, err := db.Get(ctx, k).Result(); err != nil || v != "theirs" {
				t.Errorf("DB %s: key %q not ours changed: %q %v", name, k, v, err)
			}
		}
	}
}

func TestUnreadableCallIsLeftAlone(t *testing.T) {
	s, r := newStore(t)
	a := r.Client(partA.DB)
	defer a.Close()
	cases := map[string]map[string]any{
		"bad-json":  {"schema": "1", "call": "{", "medias": "0"},
		"newer":     {"schema": "9", "call": "{}", "medias": "0"},
		"wrong-id":  {"schema": "1", "call": `{"id":"other","owner":"a"}`, "medias": "0"},
		"no-schema": {"call": "{}"},
	}
	var ids []string
	for id, h := range cases {
		a.HSet(ctx, CallKey(id), h)
		ids = append(ids, id)
	}
	entries, _, errs, err := s.Read(ctx, partA, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if entries[i] != nil || errs[i] == nil {
			t.Errorf("%s: entry %v, err %v", id, entries[i], errs[i])
		}
		if n, _ := a.Exists(ctx, CallKey(id)).Result(); n != 1 {
			t.Errorf("%s: unreadable key deleted", id)
		}
	}
	if i := indexOf(ids, "newer"); !errors.Is(errs[i], ErrNewerSchema) {
		t.Errorf("newer schema: %v", errs[i])
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in       string
		addr, pw string
		db       int
		tls      bool
		err      string
	}{
		{in: "127.0.0.1:6379/3", addr: "127.0.0.1:6379", db: 3},
		{in: "secret@10.0.0.5:6380/0", addr: "10.0.0.5:6380", pw: "secret", db: 0},
		{in: "p@ss@[::1]:6379/12", addr: "[::1]:6379", pw: "p@ss", db: 12},
		{in: "redis://:pw@127.0.0.1:6379/4", addr: "127.0.0.1:6379", pw: "pw", db: 4},
		{in: "rediss://127.0.0.1:6379/5", addr: "127.0.0.1:6379", db: 5, tls: true},
		{in: "127.0.0.1:6379", err: "want [PW@]HOST:PORT/DB"},
		{in: "127.0.0.1:6379/x", err: "not a number"},
		{in: "127.0.0.1/1", err: "HOST:PORT"},
	}
	for _, tt := range tests {
		o, p, err := ParseURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if o.Addr != tt.addr || o.Password != tt.pw || p.DB != tt.db || (o.TLSConfig != nil) != tt.tls || o.DB != 0 {
			t.Errorf("%q: addr %q pw %q db %d tls %v (options DB %d)", tt.in, o.Addr, o.Password, p.DB, o.TLSConfig != nil, o.DB)
		}
	}
}

func TestCheckFlags(t *testing.T) {
	tests := []struct {
		in, missing string
	}{
		{"Khgx", ""}, {"KA", ""}, {"AKE", ""}, {"Kgh$x", ""},
		{"", "K (keyspace channel)"}, {"Kh", "g (generic: del), x (expired keys)"}, {"Ehgx", "K (keyspace"},
	}
	for _, tt := range tests {
		err := checkFlags(tt.in)
		if (err == nil) != (tt.missing == "") || (err != nil && !strings.Contains(err.Error(), tt.missing)) {
			t.Errorf("%q: %v, want missing %q", tt.in, err, tt.missing)
		}
	}
}

func TestParseChannel(t *testing.T) {
	tests := []struct {
		ch string
		db int
		id string
		ok bool
	}{
		{"__keyspace@3__:rtpkit:v1:call:abc@host", 3, "abc@host", true},
		{"__keyspace@0__:rtpkit:v1:call:a:b", 0, "a:b", true},
		{"__keyspace@3__:rtpkit:v1:pt:abc:0", 0, "", false},
		{"__keyspace@3__:call:abc", 0, "", false},
		{"__keyevent@3__:hset", 0, "", false},
		{"__keyspace@x__:rtpkit:v1:call:a", 0, "", false},
		{"__keyspace@3__:rtpkit:v1:call:", 0, "", false},
	}
	for _, tt := range tests {
		p, id, ok := ParseChannel(tt.ch)
		if ok != tt.ok || (ok && (p.DB != tt.db || id != tt.id)) {
			t.Errorf("%q: %v %q %v", tt.ch, p, id, ok)
		}
	}
	if got := (Partition{DB: 3}).Pattern(); got != "__keyspace@3__:rtpkit:v1:call:*" {
		t.Errorf("pattern %q", got)
	}
	if p, err := ParsePartition(Partition{DB: 7}.String()); err != nil || p.DB != 7 {
		t.Errorf("partition round trip: %v %v", p, err)
	}
}

// TestPassword: a Redis that requires a password is reached with
// rtpengine's PW@HOST:PORT/DB form (or RTPENGINE_REDIS_AUTH_PW); a wrong
// password is refused with Redis's own message.
func TestPassword(t *testing.T) {
	r := testutil.StartRedis(t, testutil.RedisOptions{Password: "s3cret"})
	tests := []struct {
		name, url, env, err string
	}{
		{name: "in the address", url: "s3cret@" + r.Addr + "/4"},
		{name: "from the environment", url: r.Addr + "/4", env: "s3cret"},
		{name: "as a URL", url: "redis://:s3cret@" + r.Addr + "/4"},
		{name: "wrong", url: "nope@" + r.Addr + "/4", err: "WRONGPASS"},
		{name: "missing", url: r.Addr + "/4", err: "NOAUTH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RTPENGINE_REDIS_AUTH_PW", tt.env)
			o, p, err := ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			rdb := redis.NewClient(o)
			defer rdb.Close()
			s := New(rdb, time.Hour)
			err = s.Load(ctx)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("load: %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := testCall("pw-call", []nodestate.PayloadType{pcmu})
			if res := apply(t, s, Op{Kind: OpWrite, Part: p, ID: c.ID, Entry: &Entry{Call: c}}); res[0] != nil {
				t.Fatal(res[0])
			}
			if e, _ := read1(t, s, p, c.ID); e == nil {
				t.Fatal("call not read back")
			}
		})
	}
}
