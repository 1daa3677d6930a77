package rediscalls

import (
	"strconv"
	"testing"
)

// FuzzParseChannel: a keyspace notification channel (whatever a Redis
// server, or anyone who may publish on it, sends) parses to a partition
// and call id only when it is exactly the channel of that call's key, and
// never panics.
func FuzzParseChannel(f *testing.F) {
	f.Add("__keyspace@3__:" + CallKey("abc"))
	f.Add("__keyspace@0__:" + CallKey("a:b@c__:d"))
	f.Add("__keyspace@-1__:" + CallKey("x"))
	f.Add("__keyspace@3__:" + KeyPrefix + "pt:abc:0")
	f.Add("__keyevent@3__:hset")
	f.Add("__keyspace@99999999999999999999__:" + CallKey("x"))
	f.Fuzz(func(t *testing.T, ch string) {
		p, id, ok := ParseChannel(ch)
		if !ok {
			return
		}
		if id == "" || p.DB < 0 {
			t.Fatalf("ParseChannel(%q) = %+v %q", ch, p, id)
		}
		if again := "__keyspace@" + strconv.Itoa(p.DB) + "__:" + CallKey(id); again != ch {
			// Only a number written differently (leading zeros, a sign)
			// may differ; the call id must be the key's.
			p2, id2, ok2 := ParseChannel(again)
			if !ok2 || p2 != p || id2 != id {
				t.Fatalf("ParseChannel(%q) = %+v %q, which does not round-trip (%q)", ch, p, id, again)
			}
		}
	})
}
