package ngserver

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"golang.org/x/sys/unix"
)

// FuzzSplitCookie checks the datagram framing: a message is accepted
// exactly when it has a non-empty cookie before its first space, and then
// cookie, space and document are the message.
func FuzzSplitCookie(f *testing.F) {
	for _, seed := range []string{
		"5323_1 " + pingDoc, `5323_3 {"command":"ping"}`, "c ", " ", "", "nospace",
		" leading", "a  b", "\x00 \x00", "x9 d7:command6:answere",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cookie, doc, ok := SplitCookie(msg)
		i := bytes.IndexByte(msg, ' ')
		if ok != (i > 0) {
			t.Fatalf("ok=%v for a message whose first space is at %d", ok, i)
		}
		if !ok {
			if cookie != nil || doc != nil {
				t.Fatalf("rejected, yet cookie %q doc %q", cookie, doc)
			}
			return
		}
		if len(cookie) == 0 || bytes.IndexByte(cookie, ' ') >= 0 {
			t.Fatalf("bad cookie %q", cookie)
		}
		if got := string(cookie) + " " + string(doc); got != string(msg) {
			t.Fatalf("cookie+SP+doc = %q, message %q", got, msg)
		}
		// The reply frame echoes the cookie verbatim.
		if r := frame(string(cookie), []byte("d6:result2:oke")); !bytes.HasPrefix(r, append(append([]byte{}, cookie...), ' ')) {
			t.Fatalf("frame %q", r)
		}
	})
}

// streamResult is what a framer makes of a whole stream.
type streamResult struct {
	msgs  []string // cookie + "\x00" + document
	fatal bool
	rest  int // bytes left buffered at the end
}

// runFramer feeds data to a new framer in pieces whose sizes come from
// chunks (cycled; 0 means as much as fits), collecting the messages.
func runFramer(t *testing.T, data, chunks []byte, maxMsg int) streamResult {
	var res streamResult
	f := newFramer(maxMsg)
	drain := func() bool {
		for {
			cookie, doc, err := f.next()
			if errors.Is(err, errNeedMore) {
				return true
			}
			if err != nil {
				if !errors.Is(err, errStream) {
					t.Fatalf("error not wrapping errStream: %v", err)
				}
				res.fatal = true
				return false
			}
			checkMessage(t, cookie, doc, maxMsg)
			res.msgs = append(res.msgs, string(cookie)+"\x00"+string(doc))
		}
	}
	for i := 0; len(data) > 0; i++ {
		room := f.space()
		if len(room) == 0 {
			t.Fatalf("framer full with %d bytes buffered", f.buffered())
		}
		n := len(room)
		if len(chunks) > 0 && chunks[i%len(chunks)] != 0 {
			n = min(n, int(chunks[i%len(chunks)]))
		}
		n = copy(room[:n], data)
		f.add(n)
		data = data[n:]
		if !drain() {
			return res
		}
	}
	res.rest = f.buffered()
	return res
}

// checkMessage checks one message the framer returned.
func checkMessage(t *testing.T, cookie, doc []byte, maxMsg int) {
	t.Helper()
	if len(cookie) == 0 || bytes.IndexByte(cookie, ' ') >= 0 || isSpace(cookie[0]) || len(cookie) >= MaxCookieTCP {
		t.Fatalf("bad cookie %q", cookie)
	}
	if len(cookie)+1+len(doc) > maxMsg {
		t.Fatalf("message of %d bytes over %d", len(cookie)+1+len(doc), maxMsg)
	}
	if len(doc) == 0 {
		t.Fatalf("empty document")
	}
	var n int
	var err error
	if doc[0] == '{' {
		n, err = jsonEnd(doc)
	} else {
		n, err = bencode.Split(doc)
	}
	if err != nil || n != len(doc) {
		t.Fatalf("document %q is not exactly one value: %d, %v", doc, n, err)
	}
}

// FuzzFramer feeds the same stream whole and in pieces: the messages, and
// whether the stream is refused, must not depend on how it was cut.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("5323_1 "+pingDoc+"x9 d7:command6:answere"), []byte{3, 7, 1}, uint16(0))
	f.Add([]byte("a d1:ai1ee\r\nb l4:spame  c 3:abc"), []byte{1}, uint16(0))
	f.Add([]byte(`j {"command":"ping","x":[1,{"y":"}"}]}k d1:ai-3ee`), []byte{2, 5}, uint16(0))
	f.Add([]byte("big d3:sdp200:"+string(bytes.Repeat([]byte("v"), 200))+"e"), []byte{9}, uint16(100))
	f.Add([]byte("g1 hello"), []byte{}, uint16(0))
	f.Add(bytes.Repeat([]byte("c"), 1100), []byte{200}, uint16(0))
	f.Add([]byte("d d1:a5:12345e d1:b5:67890e"), []byte{4, 4, 4}, uint16(30))
	f.Fuzz(func(t *testing.T, data, chunks []byte, max uint16) {
		maxMsg := 64 + int(max)
		whole := runFramer(t, data, nil, maxMsg)
		pieces := runFramer(t, data, chunks, maxMsg)
		if whole.fatal != pieces.fatal || len(whole.msgs) != len(pieces.msgs) {
			t.Fatalf("whole: %d messages, fatal %v; in pieces %v: %d messages, fatal %v",
				len(whole.msgs), whole.fatal, chunks, len(pieces.msgs), pieces.fatal)
		}
		for i := range whole.msgs {
			if whole.msgs[i] != pieces.msgs[i] {
				t.Fatalf("message %d: %q whole, %q in pieces", i, whole.msgs[i], pieces.msgs[i])
			}
		}
		if !whole.fatal && whole.rest != pieces.rest {
			t.Fatalf("left over: %d whole, %d in pieces", whole.rest, pieces.rest)
		}
	})
}

// FuzzParsePktinfo parses arbitrary control-message bytes without panicking,
// and finds the address in the messages replyOOB builds, after other
// messages.
func FuzzParsePktinfo(f *testing.F) {
	f.Add([]byte{}, []byte{10, 1, 0, 2}, uint8(0))
	f.Add(unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: 3, Spec_dst: [4]byte{10, 1, 0, 1}}), []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(5))
	f.Add(unix.UnixRights(1, 2, 3), []byte{127, 0, 0, 1}, uint8(1))
	f.Fuzz(func(t *testing.T, junk, addr []byte, ifindex uint8) {
		_ = parsePktinfo(junk)
		a, ok := netip.AddrFromSlice(addr)
		if !ok || !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			return
		}
		oob := replyOOB(pktDst{addr: a, ifindex: int(ifindex)})
		// Prefix a well-formed unrelated message (SCM_RIGHTS) to skip.
		msgs := append(unix.UnixRights(7), oob...)
		for _, b := range [][]byte{oob, msgs} {
			d := parsePktinfo(b)
			if d.addr != a {
				t.Fatalf("parsed %v from the message for %v", d.addr, a)
			}
		}
	})
}

// FuzzResumeScan feeds a document to the resumable scanners (benScan,
// jsonScan) in pieces and checks every verdict against the authoritative
// scanners: "more" exactly when bencode.Split or jsonEnd reports an
// incomplete value.
func FuzzResumeScan(f *testing.F) {
	f.Add([]byte(pingDoc), []byte{1})
	f.Add([]byte(`{"command":"ping","x":[1,-0.5e+3,{"y":"\u00e9\"}"}],"t":true,"n":null}`), []byte{3, 1})
	f.Add([]byte("d1:ai-12e1:bl0:i0eee"), []byte{2})
	f.Add([]byte(`{"a":01}`), []byte{1})
	f.Add([]byte("i-0e"), []byte{1})
	f.Fuzz(func(t *testing.T, doc, chunks []byte) {
		if len(doc) == 0 {
			return
		}
		var ben benScan
		var js jsonScan
		var examined, calls int
		for end, i := 0, 0; end < len(doc); i++ {
			calls++
			step := 1
			if len(chunks) > 0 && chunks[i%len(chunks)] != 0 {
				step = int(chunks[i%len(chunks)])
			}
			end = min(end+step, len(doc))
			b := doc[:end]
			var v verdict
			var err error
			if doc[0] == '{' {
				v = js.scan(b, &examined)
				_, err = jsonEnd(b)
			} else {
				v = ben.scan(b, &examined)
				_, err = bencode.Split(b)
				if errors.Is(err, bencode.ErrIncomplete) {
					err = errNeedMore
				}
			}
			if more := errors.Is(err, errNeedMore); more != (v == scanMore) {
				t.Fatalf("prefix %q: scanner says more=%v, authority %v", b, v == scanMore, err)
			}
			if v != scanMore {
				return
			}
		}
		// An incomplete length or integer (at most 21 bytes) is examined
		// again on each call; everything else once.
		if examined > len(doc)+24*calls {
			t.Fatalf("examined %d bytes of a %d-byte document in %d calls", examined, len(doc), calls)
		}
	})
}
