package fwd

// Changing the engine's streams: Set, Apply and Retire check a change,
// record it on the control side and queue it for the stream's loop, then
// wait for the loop to take it (undoing a Set the loop refused).

import (
	"fmt"
	"net/netip"
	"slices"
)

// Set adds stream id or updates it. An update keeps the learned endpoint
// unless Signalled changed, and unconfirms it when LastSignal or Learning
// changed (see [Stream]); counters carry on. The FD may change; Call may
// not. Set returns once the owning loop serves the new configuration.
func (e *Engine) Set(id StreamID, s Stream) error {
	if err := e.set(id, s); err != nil {
		return fmt.Errorf("fwd: set stream %d: %w", id, err)
	}
	return nil
}

func (e *Engine) set(id StreamID, s Stream) error {
	s, family, err := check(id, s, e.knownFamily(id, s.FD))
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	p, err := e.setLocked(id, s, family)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	p.loop.wake()
	e.mu.Unlock()
	return e.finish(p)
}

// socketFamilyOf is socketFamily; tests count its calls.
var socketFamilyOf = socketFamily

// knownFamily is the address family of fd if it is already stream id's
// socket (an update that keeps the socket: no need to ask the kernel
// again), else 0.
func (e *Engine) knownFamily(id StreamID, fd int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ent := e.streams[id]; ent != nil && ent.fd == fd {
		return ent.family
	}
	return 0
}

// check validates a stream configuration ahead of Set and returns it with
// Signalled in its canonical form, and the socket's address family: known
// if not 0, else asked of the socket (is it a datagram socket, of which
// family).
func check(id StreamID, s Stream, known int) (Stream, int, error) {
	switch {
	case id == 0:
		return s, 0, fmt.Errorf("%w: id 0", ErrInvalidStream)
	case s.FD < 0:
		return s, 0, fmt.Errorf("%w: fd %d", ErrInvalidStream, s.FD)
	case s.Peer == id || s.RTCP == id:
		return s, 0, fmt.Errorf("%w: linked to itself", ErrInvalidStream)
	case s.Learning > Heuristic:
		return s, 0, fmt.Errorf("%w: learning mode %d", ErrInvalidStream, s.Learning)
	}
	for _, k := range []SRTP{s.SRTPIn, s.SRTPOut} {
		if err := k.check(-1, -1); err != nil {
			return s, 0, err
		}
	}
	family := known
	if family == 0 && s.Local.IsValid() {
		family = addrFamily(s.Local.Addr())
	}
	if family == 0 {
		var err error
		if family, err = socketFamilyOf(s.FD); err != nil {
			return s, 0, err
		}
	}
	altFamily := 0
	if s.AltFD != 0 {
		if !s.AltLocal.IsValid() {
			return s, 0, fmt.Errorf("%w: second socket without its address", ErrInvalidStream)
		}
		altFamily = addrFamily(s.AltLocal.Addr().Unmap())
		if s.AltFD < 0 || s.AltFD == s.FD || altFamily == family {
			return s, 0, fmt.Errorf("%w: second socket fd %d (%s) beside fd %d", ErrInvalidStream, s.AltFD, s.AltLocal, s.FD)
		}
	}
	if s.Signalled.IsValid() {
		s.Signalled = netip.AddrPortFrom(s.Signalled.Addr().Unmap(), s.Signalled.Port())
		if !reaches(family, altFamily, s.Signalled) {
			return s, 0, fmt.Errorf("%w: %s on an IPv4 socket", ErrFamily, s.Signalled)
		}
	}
	return s, family, nil
}

// pending is a command queued for a loop that the caller has still to
// wait for (finish), with what it needs to undo a failed Set or to read a
// retired stream's counters.
type pending struct {
	id       StreamID
	loop     *loop
	ent, old *entry
	retire   bool
	wait     func() error
}

// setLocked records stream id's new configuration and queues it for its
// loop without waking the loop; e.mu is held and the engine is open.
func (e *Engine) setLocked(id StreamID, s Stream, family int) (pending, error) {
	old := e.streams[id]
	if err := e.checkLinks(id, old, s); err != nil {
		return pending{}, err
	}
	ent := &entry{call: s.Call, fd: s.FD, altFD: s.AltFD, family: family}
	if old != nil {
		ent.loop, ent.pub = old.loop, old.pub
		e.forgetFDs(old)
	} else {
		ent.loop, ent.pub = e.loopFor(s.Call), new(published)
	}
	e.streams[id] = ent
	e.noteFDs(id, ent)
	e.ctl.note(id, &s)
	wait := e.post(ent.loop, &command{op: opSet, id: id, s: s, family: family, pub: ent.pub})
	return pending{id: id, loop: ent.loop, ent: ent, old: old, wait: wait}, nil
}

// retireLocked forgets stream ent (id) and queues its removal for its
// loop without waking the loop; e.mu is held and the engine is open.
func (e *Engine) retireLocked(id StreamID, ent *entry) pending {
	delete(e.streams, id)
	e.forgetFDs(ent)
	e.ctl.note(id, nil)
	delete(e.dtlsKeys, id)
	wait := e.post(ent.loop, &command{op: opRemove, id: id})
	return pending{id: id, loop: ent.loop, ent: ent, retire: true, wait: wait}
}

// finish waits for p's loop to apply it. A Set the loop refused is undone
// in the records (the loop kept its previous state) and its error
// returned.
func (e *Engine) finish(p pending) error {
	err := p.wait()
	if err == nil || p.retire {
		return nil
	}
	e.mu.Lock()
	if e.streams[p.id] == p.ent {
		e.forgetFDs(p.ent)
		if p.old != nil {
			e.streams[p.id] = p.old
			e.noteFDs(p.id, p.old)
		} else {
			delete(e.streams, p.id)
		}
	}
	e.mu.Unlock()
	return err
}

// Change is one entry of Apply: Retire stream ID, or Set it to Stream.
type Change struct {
	ID     StreamID
	Stream Stream
	Retire bool
}

// Outcome is what Apply did with one Change: for a Set, the error Set
// would have returned; for a Retire, what Retire would have returned
// (the stream's final counters, and whether there was such a stream).
type Outcome struct {
	Err      error
	Counters Counters
	Found    bool
}

// Apply makes changes in their order, as the same calls of Set and Retire
// would, but queues all of them before it wakes the loops they concern,
// once each, and then waits for all: a call's streams, which share a
// loop, change in one round trip with their loop instead of one per
// stream. Outcomes are in the order of changes.
func (e *Engine) Apply(changes []Change) []Outcome {
	out := make([]Outcome, len(changes))
	streams := make([]Stream, len(changes))
	families := make([]int, len(changes))
	e.mu.Lock()
	for i, c := range changes {
		if ent := e.streams[c.ID]; !c.Retire && ent != nil && ent.fd == c.Stream.FD {
			families[i] = ent.family
		}
	}
	e.mu.Unlock()
	for i, c := range changes {
		if !c.Retire {
			var err error
			streams[i], families[i], err = check(c.ID, c.Stream, families[i])
			if err != nil {
				out[i].Err = fmt.Errorf("fwd: set stream %d: %w", c.ID, err)
			}
		}
	}
	queued := make([]int, 0, len(changes))
	ps := make([]pending, len(changes))
	var loops []*loop
	e.mu.Lock()
	for i, c := range changes {
		if out[i].Err != nil {
			continue
		}
		if c.Retire {
			ent := e.streams[c.ID]
			if ent == nil {
				continue
			}
			out[i].Found = true
			if e.closed {
				delete(e.streams, c.ID)
				e.forgetFDs(ent)
				out[i].Counters = ent.pub.read()
				continue
			}
			ps[i] = e.retireLocked(c.ID, ent)
		} else {
			if e.closed {
				out[i].Err = fmt.Errorf("fwd: set stream %d: %w", c.ID, ErrClosed)
				continue
			}
			p, err := e.setLocked(c.ID, streams[i], families[i])
			if err != nil {
				out[i].Err = fmt.Errorf("fwd: set stream %d: %w", c.ID, err)
				continue
			}
			ps[i] = p
		}
		queued = append(queued, i)
		if !slices.Contains(loops, ps[i].loop) {
			loops = append(loops, ps[i].loop)
		}
	}
	if !e.manual {
		for _, l := range loops {
			l.wake()
		}
	}
	e.mu.Unlock()
	for _, i := range queued {
		if err := e.finish(ps[i]); err != nil {
			out[i].Err = fmt.Errorf("fwd: set stream %d: %w", changes[i].ID, err)
		}
		if ps[i].retire {
			out[i].Counters = ps[i].ent.pub.read()
		}
	}
	return out
}

// checkLinks validates an update against the records; e.mu is held.
func (e *Engine) checkLinks(id StreamID, old *entry, s Stream) error {
	if old != nil && old.call != s.Call {
		return fmt.Errorf("%w: call %q, was %q", ErrCallChanged, s.Call, old.call)
	}
	for i, fd := range [2]int{s.FD, s.AltFD} {
		if owner, ok := e.fds[fd]; (i == 0 || fd != 0) && ok && owner != id {
			return fmt.Errorf("%w: fd %d is stream %d's", ErrFDInUse, fd, owner)
		}
	}
	for _, l := range [2]StreamID{s.Peer, s.RTCP} {
		if o := e.streams[l]; l != 0 && o != nil && o.call != s.Call {
			return fmt.Errorf("%w: stream %d is in call %q, not %q", ErrOtherCall, l, o.call, s.Call)
		}
	}
	return nil
}

// Remove stops serving stream id. When it returns the stream's socket is
// out of the engine's epoll set and nothing more is received from it or
// sent to its party, so the caller may close it. Unknown ids are ignored.
func (e *Engine) Remove(id StreamID) { e.Retire(id) }

// Retire is Remove returning the stream's final counters, read once its
// loop has let it go (false if there was no such stream): a caller that
// keeps totals over streams that come and go adds them, and its totals
// never go down.
func (e *Engine) Retire(id StreamID) (Counters, bool) {
	o := e.Apply([]Change{{ID: id, Retire: true}})[0]
	return o.Counters, o.Found
}

// noteFDs records ent's sockets as stream id's; e.mu is held.
func (e *Engine) noteFDs(id StreamID, ent *entry) {
	e.fds[ent.fd] = id
	if ent.altFD != 0 {
		e.fds[ent.altFD] = id
	}
}

// forgetFDs forgets ent's sockets; e.mu is held.
func (e *Engine) forgetFDs(ent *entry) {
	delete(e.fds, ent.fd)
	if ent.altFD != 0 {
		delete(e.fds, ent.altFD)
	}
}
