package fwd

import (
	"errors"
	"testing"
	"time"
)

// TestApply: a batch installs a call's two streams, refuses the bad
// changes among them with the error Set would give, retires a stream with
// its final counters, and reports an unknown stream as not found; the
// streams it installed forward, the one it retired no longer does.
func TestApply(t *testing.T) {
	for _, workers := range []int{1, 2} {
		e := newTestEngine(t, Config{Workers: workers})
		c := newCall(t)
		sa := Stream{Call: "c", FD: c.pa, Peer: 2, Signalled: addrOf(c.A)}
		sb := Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: addrOf(c.B)}
		out := e.Apply([]Change{
			{ID: 1, Stream: sa},
			{ID: 0, Stream: sb},                          // id 0
			{ID: 3, Stream: Stream{Call: "d", FD: c.pa}}, // fd taken by stream 1
			{ID: 2, Stream: sb},
			{ID: 9, Retire: true}, // no such stream
		})
		for i, want := range []error{nil, ErrInvalidStream, ErrFDInUse, nil, nil} {
			if !errors.Is(out[i].Err, want) || (want == nil) != (out[i].Err == nil) {
				t.Errorf("workers %d: change %d: err %v, want %v", workers, i, out[i].Err, want)
			}
		}
		if out[4].Found {
			t.Errorf("workers %d: unknown stream retired", workers)
		}
		p := rtpPacket(1, 1, []byte("batch"))
		send(t, c.A, c.paA, p)
		expect(t, c.B, p, c.pbA)
		if _, ok := e.Stats(3); ok {
			t.Errorf("workers %d: refused stream 3 installed", workers)
		}

		out = e.Apply([]Change{{ID: 1, Retire: true}, {ID: 2, Stream: sb}})
		if !out[0].Found || out[0].Counters.Packets != 1 || out[1].Err != nil {
			t.Fatalf("workers %d: retire in a batch = %+v", workers, out)
		}
		send(t, c.A, c.paA, p)
		expectNothing(t, c.B, 100*time.Millisecond)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		out = e.Apply([]Change{{ID: 2, Retire: true}, {ID: 1, Stream: sa}})
		if !out[0].Found || !errors.Is(out[1].Err, ErrClosed) {
			t.Errorf("workers %d: after Close = %+v", workers, out)
		}
	}
}

// An update that keeps a stream's socket does not ask the kernel for the
// socket's family again; a stream installed anew, by Set or Apply, does,
// unless the caller gave the socket's Local address.
func TestUpdateKeepsKnownFamily(t *testing.T) {
	calls := 0
	old := socketFamilyOf
	socketFamilyOf = func(fd int) (int, error) { calls++; return socketFamily(fd) }
	defer func() { socketFamilyOf = old }()
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	sa := Stream{Call: "c", FD: c.pa, Peer: 2, Signalled: addrOf(c.A)}
	sb := Stream{Call: "c", FD: c.pb, Peer: 1}
	for _, step := range []struct {
		name string
		do   func() error
		want int // calls so far
	}{
		{"install by Apply", func() error { return e.Apply([]Change{{ID: 1, Stream: sa}, {ID: 2, Stream: sb}})[1].Err }, 2},
		{"update by Apply", func() error { sb.Signalled = addrOf(c.B); return e.Apply([]Change{{ID: 2, Stream: sb}})[0].Err }, 2},
		{"update by Set", func() error { return e.Set(1, sa) }, 2},
		{"retire by Apply", func() error { return e.Apply([]Change{{ID: 2, Retire: true}})[0].Err }, 2},
		{"install again by Set", func() error { return e.Set(2, sb) }, 3},
		{"retire again", func() error { return e.Apply([]Change{{ID: 2, Retire: true}})[0].Err }, 3},
		{"install with Local given", func() error { sb.Local = c.pbA; return e.Set(2, sb) }, 3},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if calls != step.want {
			t.Errorf("%s: %d calls of socketFamily, want %d", step.name, calls, step.want)
		}
	}
	p := rtpPacket(1, 1, []byte("updated"))
	send(t, c.A, c.paA, p)
	expect(t, c.B, p, c.pbA)
}
