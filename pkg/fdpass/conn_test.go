package fdpass

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"

	"golang.org/x/sys/unix"
)

func TestRoundTrip600(t *testing.T) {
	pairs := map[string]func(testing.TB) (*Conn, *Conn){
		"socketpair": connPair,
		"listener":   listenerPair,
	}
	for name, mk := range pairs {
		t.Run(name, func(t *testing.T) {
			testutil.CheckNoFDLeak(t)
			const n = 600
			sender, receiver := mk(t)
			socks := udpSockets(t, n)
			items := make([]Item, n)
			for i, fd := range socks {
				items[i] = Item{Meta: []byte(strconv.Itoa(i)), FD: fd}
			}
			sent := make(chan error, 1)
			go func() { sent <- sender.Send(items) }()

			receiver.SetReadDeadline(time.Now().Add(10 * time.Second))
			var got []Item
			t.Cleanup(func() { CloseItems(got) })
			msgs := 0
			for len(got) < n && msgs < 10 {
				batch, err := receiver.Recv()
				if err != nil {
					t.Fatalf("recv after %d items: %v", len(got), err)
				}
				if len(batch) > MaxFDs {
					t.Errorf("message %d has %d items", msgs, len(batch))
				}
				msgs++
				got = append(got, batch...)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if len(got) != n || msgs != 3 {
				t.Fatalf("received %d items in %d messages, want %d in 3", len(got), msgs, n)
			}
			for i, it := range got {
				if string(it.Meta) != strconv.Itoa(i) {
					t.Fatalf("item %d has metadata %q", i, it.Meta)
				}
				if it.FD == socks[i] {
					t.Fatalf("item %d: received the sender's own descriptor number %d", i, it.FD)
				}
				if a, b := sockName(t, it.FD), sockName(t, socks[i]); a != b {
					t.Fatalf("item %d: received socket bound to %s, sent %s", i, a, b)
				}
				fl, err := unix.FcntlInt(uintptr(it.FD), unix.F_GETFD, 0)
				if err != nil || fl&unix.FD_CLOEXEC == 0 {
					t.Fatalf("item %d: received descriptor not close-on-exec (%#x, %v)", i, fl, err)
				}
			}
		})
	}
}

func TestPlainAndMixedItems(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	a, b := connPair(t)
	socks := udpSockets(t, 2)
	big := bytes.Repeat([]byte("x"), 30000)
	tests := []struct {
		name  string
		items []Item
		msgs  int
	}{
		{"request", []Item{{Meta: []byte(`{"op":"hello"}`), FD: NoFD}}, 1},
		{"empty meta", []Item{{FD: NoFD}, {Meta: nil, FD: socks[0]}}, 1},
		{"mixed", []Item{{Meta: []byte("a"), FD: socks[0]}, {Meta: []byte("ack"), FD: NoFD}, {Meta: []byte("b"), FD: socks[1]}}, 1},
		{"split by size", []Item{{Meta: big, FD: socks[0]}, {Meta: big, FD: NoFD}, {Meta: big, FD: socks[1]}, {Meta: big, FD: NoFD}, {Meta: big, FD: NoFD}}, 3},
		{"largest item", []Item{{Meta: make([]byte, MaxItemMeta), FD: socks[1]}, {Meta: []byte("next"), FD: NoFD}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := make(chan error, 1)
			go func() { sent <- a.Send(tt.items) }()
			b.SetReadDeadline(time.Now().Add(10 * time.Second))
			var got []Item
			defer func() { CloseItems(got) }()
			for range tt.msgs {
				batch, err := b.Recv()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, batch...)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.items) {
				t.Fatalf("received %d items in %d messages, want %d", len(got), tt.msgs, len(tt.items))
			}
			for i, it := range got {
				want := tt.items[i]
				if !bytes.Equal(it.Meta, want.Meta) {
					t.Errorf("item %d: metadata %.20q..., want %.20q...", i, it.Meta, want.Meta)
				}
				if (it.FD == NoFD) != (want.FD == NoFD) {
					t.Errorf("item %d: FD %d, sent %d", i, it.FD, want.FD)
				} else if it.FD != NoFD && sockName(t, it.FD) != sockName(t, want.FD) {
					t.Errorf("item %d: wrong socket", i)
				}
			}
			// Nothing else is queued.
			b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if extra, err := b.Recv(); err == nil {
				CloseItems(extra)
				t.Errorf("unexpected extra message with %d items", len(extra))
			}
		})
	}
}

func TestRawMessages(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	a, b := connPair(t)
	socks := udpSockets(t, 1)
	if err := a.WriteMsg([]byte("plain"), nil); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteMsg([]byte(`{"alloc":7}`), socks); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	meta, fds, err := b.ReadMsg()
	if err != nil || string(meta) != "plain" || len(fds) != 0 {
		t.Fatalf("ReadMsg = %q, %v, %v", meta, fds, err)
	}
	meta, fds, err = b.ReadMsg()
	if err != nil || string(meta) != `{"alloc":7}` || len(fds) != 1 {
		t.Fatalf("ReadMsg = %q, %v, %v", meta, fds, err)
	}
	if sockName(t, fds[0]) != sockName(t, socks[0]) {
		t.Error("wrong socket")
	}
	closeFDs(fds)

	// The peer's close reads as io.EOF.
	a.Close()
	if _, _, err := b.ReadMsg(); !errors.Is(err, io.EOF) {
		t.Errorf("ReadMsg after peer close = %v, want io.EOF", err)
	}
}

func TestSendLimits(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	a, _ := connPair(t)
	socks := udpSockets(t, MaxFDs+1)
	writes := []struct {
		name string
		meta []byte
		fds  []int
		want error
	}{
		{"empty meta", nil, nil, ErrEmpty},
		{"meta too large", make([]byte, MaxMsgSize+1), nil, ErrTooLarge},
		{"too many fds", []byte("x"), socks, ErrTooLarge},
		{"negative fd", []byte("x"), []int{-1}, nil},
	}
	for _, tt := range writes {
		t.Run("WriteMsg/"+tt.name, func(t *testing.T) {
			err := a.WriteMsg(tt.meta, tt.fds)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("WriteMsg = %v, want %v", err, tt.want)
			}
		})
	}
	sends := []struct {
		name  string
		items []Item
		want  error
	}{
		{"no items", nil, ErrEmpty},
		{"meta too large", []Item{{Meta: make([]byte, MaxItemMeta+1), FD: NoFD}}, ErrTooLarge},
		{"bad fd", []Item{{Meta: []byte("x"), FD: -2}}, nil},
	}
	for _, tt := range sends {
		t.Run("Send/"+tt.name, func(t *testing.T) {
			err := a.Send(tt.items)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Send = %v, want %v", err, tt.want)
			}
		})
	}
	// A closed descriptor is reported by the kernel.
	fd, err := unix.Dup(socks[0])
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if err := a.Send([]Item{{Meta: []byte("x"), FD: fd}}); !errors.Is(err, unix.EBADF) {
		t.Errorf("Send with a closed descriptor = %v, want EBADF", err)
	}
}

// TestTruncated shrinks the receiver's buffers (a test hook) so that the
// kernel truncates the descriptors (MSG_CTRUNC) or the message (MSG_TRUNC):
// whatever arrived must be closed and the connection stay usable.
func TestTruncated(t *testing.T) {
	tests := []struct {
		name    string
		oob     int // room for this many descriptors
		rbuf    int
		sendFDs int
		meta    int
	}{
		{"ctrunc no room", -1, MaxMsgSize, 10, 10},
		{"ctrunc one", 1, MaxMsgSize, 10, 10},
		{"ctrunc two", 2, MaxMsgSize, 10, 10},
		{"ctrunc full batch", MaxFDs - 1, MaxMsgSize, MaxFDs, 10},
		{"msg trunc", MaxFDs, 8, 3, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckNoFDLeak(t)
			a, b := connPair(t)
			socks := udpSockets(t, tt.sendFDs)
			if tt.oob < 0 {
				b.oob = nil
			} else {
				b.oob = make([]byte, unix.CmsgSpace(tt.oob*4))
			}
			b.rbuf = make([]byte, tt.rbuf)
			before := testutil.FDCount(t, 0)
			if err := a.WriteMsg(make([]byte, tt.meta), socks); err != nil {
				t.Fatal(err)
			}
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			meta, fds, err := b.ReadMsg()
			if !errors.Is(err, ErrTruncated) || meta != nil || fds != nil {
				t.Fatalf("ReadMsg = %q, %v, %v; want ErrTruncated", meta, fds, err)
			}
			t.Log(err)
			if after := testutil.FDCount(t, 0); after != before {
				t.Errorf("truncated message left descriptors open: %d before, %d after", before, after)
			}
			// The connection still works.
			b.oob = make([]byte, unix.CmsgSpace(MaxFDs*4))
			b.rbuf = make([]byte, MaxMsgSize)
			if err := a.Send([]Item{{Meta: []byte("ok"), FD: socks[0]}}); err != nil {
				t.Fatal(err)
			}
			items, err := b.Recv()
			if err != nil || len(items) != 1 || string(items[0].Meta) != "ok" {
				t.Fatalf("Recv after truncation = %v, %v", items, err)
			}
			CloseItems(items)
		})
	}
}

// TestRecvBadFrame sends raw messages that are not valid item frames, or
// whose frame does not match the descriptors sent.
func TestRecvBadFrame(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	a, b := connPair(t)
	socks := udpSockets(t, 3)
	frame := func(items ...Item) []byte {
		buf, _ := appendFrame(nil, nil, items)
		return buf
	}
	tests := []struct {
		name string
		meta []byte
		fds  []int
	}{
		{"garbage", []byte("hello"), socks[:2]},
		{"json", []byte(`{"fd":1}`), socks[:1]},
		{"fewer fds than declared", frame(Item{FD: 0}, Item{FD: 1}), socks[:1]},
		{"more fds than declared", frame(Item{FD: 0}), socks[:2]},
		{"fds with plain frame", frame(Item{Meta: []byte("req"), FD: NoFD}), socks[:3]},
		{"fd frame without fds", frame(Item{FD: 0}), nil},
		{"trailing bytes", append(frame(Item{FD: 0}), 0), socks[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testutil.FDCount(t, 0)
			if err := a.WriteMsg(tt.meta, tt.fds); err != nil {
				t.Fatal(err)
			}
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			items, err := b.Recv()
			if !errors.Is(err, ErrBadFrame) {
				CloseItems(items)
				t.Fatalf("Recv = %v, %v; want ErrBadFrame", items, err)
			}
			if after := testutil.FDCount(t, 0); after != before {
				t.Errorf("bad frame left descriptors open: %d before, %d after", before, after)
			}
		})
	}
}

func TestParseRights(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	socks := udpSockets(t, 3)
	// Two SCM_RIGHTS messages back to back, as a peer may send them.
	oob := append(unix.UnixRights(socks[0]), unix.UnixRights(socks[1], socks[2])...)
	fds, err := parseRights(oob)
	if err != nil || fmt.Sprint(fds) != fmt.Sprint(socks) {
		t.Errorf("parseRights = %v, %v; want %v", fds, err, socks)
	}
	// A header claiming more data than there is.
	bad := unix.UnixRights(socks[0])
	bad[0] = 200
	if _, err := parseRights(bad); !errors.Is(err, ErrBadControl) {
		t.Errorf("parseRights(bad) = %v, want ErrBadControl", err)
	}
	// A trailing fragment shorter than a header is ignored.
	if fds, err := parseRights(append(unix.UnixRights(socks[0]), 1, 2, 3)); err != nil || len(fds) != 1 {
		t.Errorf("parseRights(fragment) = %v, %v", fds, err)
	}
}
