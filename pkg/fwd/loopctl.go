package fwd

// The loop's side of control commands: streams added, changed, latched and
// removed between two waits, and the epoll registrations that follow.

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/rtpkit/rtpkit/pkg/icecheck"
	"golang.org/x/sys/unix"
)

// apply carries out a control command.
func (l *loop) apply(c *command) error {
	switch c.op {
	case opSet:
		return l.set(c)
	case opRemove:
		l.remove(c.id)
	case opLatch:
		if c.ice {
			l.nominate(c.id, c.ep)
			break
		}
		l.latch(c.id, c.ep)
	case opKeys:
		l.keys(c)
	}
	return nil
}

// latch applies Engine.Latch.
func (l *loop) latch(id StreamID, ep netip.AddrPort) {
	s := l.byID[id]
	if s == nil || s.fixed || !s.canLearn {
		return
	}
	if !reaches(s.family, s.altFamily, ep) {
		return
	}
	s.setEndpoint(ep, true)
}

// nominate makes ep, the pair the ICE agent settled on, the stream's
// endpoint: whatever the signalled address (a WebRTC party's is often
// the 0.0.0.0:9 placeholder) and the learning mode, and kept while the
// stream's ICE credentials stay (configure). An invalid ep (consent
// lapsed) leaves the party without an endpoint until the next
// nomination.
func (l *loop) nominate(id StreamID, ep netip.AddrPort) {
	s := l.byID[id]
	if s == nil || !s.cfg.ICE.Enabled() {
		return
	}
	if !ep.IsValid() {
		s.nominated, s.nominatedFor = netip.AddrPort{}, icecheck.Creds{}
		s.canLearn = false
		s.setEndpoint(netip.AddrPort{}, false)
		return
	}
	if !reaches(s.family, s.altFamily, ep) {
		return
	}
	s.nominated, s.nominatedFor = ep, s.cfg.ICE
	s.canLearn = true
	s.setEndpoint(ep, true)
	// Packets held for the party go now (drain releases them).
	if !slices.Contains(l.touched, s.cfg.Call) {
		l.touched = append(l.touched, s.cfg.Call)
	}
}

func (l *loop) set(c *command) error {
	s := l.byID[c.id]
	if s == nil {
		// A stream whose peer is not installed yet is registered but not
		// armed: its packets wait in the socket (after a restart, those
		// queued while no worker ran) instead of being read with nowhere
		// to go. relink arms it when the peer arrives.
		armed := c.s.Peer == 0 || l.byID[c.s.Peer] != nil
		var events uint32
		if armed {
			events = unix.EPOLLIN
		}
		slot := l.allocSlot()
		if err := l.ctlEvents(unix.EPOLL_CTL_ADD, c.s.FD, slot, events); err != nil {
			l.free = append(l.free, slot)
			return err
		}
		s = &stream{id: c.id, slot: slot, altSlot: -1, pub: c.pub, armed: armed}
		if err := l.setAlt(s, c.s.AltFD); err != nil {
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.s.FD, nil)
			l.free = append(l.free, slot)
			return err
		}
		l.slots[slot] = s
		l.byID[c.id] = s
		l.calls[c.s.Call] = append(l.calls[c.s.Call], s)
		s.configure(c.s, c.family, l.window, true)
	} else {
		if c.s.FD != s.cfg.FD {
			var events uint32
			if s.armed {
				events = unix.EPOLLIN
			}
			if err := l.ctlEvents(unix.EPOLL_CTL_ADD, c.s.FD, s.slot, events); err != nil {
				return err
			}
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.cfg.FD, nil)
		}
		if c.s.AltFD != s.cfg.AltFD {
			if err := l.setAlt(s, c.s.AltFD); err != nil {
				if c.s.FD != s.cfg.FD { // back to the socket the stream keeps
					_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.s.FD, nil)
					_ = l.ctlEvents(unix.EPOLL_CTL_ADD, s.cfg.FD, s.slot, s.events())
				}
				s.cfg.AltFD, s.altFamily = 0, 0 // its old one is out of the set
				s.refresh()
				return err
			}
		}
		s.configure(c.s, c.family, l.window, false)
	}
	l.relink(c.s.Call)
	// Held packets go once every change queued with this one is applied
	// (a call's streams are set together: the peer's address and the
	// sender's new signalling both count for them).
	if !slices.Contains(l.touched, c.s.Call) {
		l.touched = append(l.touched, c.s.Call)
	}
	return nil
}

func (l *loop) remove(id StreamID) {
	s := l.byID[id]
	if s == nil {
		return
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.cfg.FD, nil)
	_ = l.setAlt(s, 0)
	l.slots[s.slot] = nil
	l.free = append(l.free, s.slot)
	delete(l.byID, id)
	call := s.cfg.Call
	g := l.calls[call]
	for i, t := range g {
		if t == s {
			g = append(g[:i], g[i+1:]...)
			break
		}
	}
	if len(g) == 0 {
		delete(l.calls, call)
	} else {
		l.calls[call] = g
	}
	s.peer, s.rtcp = nil, nil
	l.forget(s)
	l.mediaRetired(s)
	l.relink(call)
}

// relink resolves Peer and RTCP of every stream of a call.
func (l *loop) relink(call string) {
	g := l.calls[call]
	find := func(id StreamID) *stream {
		for _, t := range g {
			if id != 0 && t.id == id {
				return t
			}
		}
		return nil
	}
	for _, t := range g {
		t.peer, t.rtcp = find(t.cfg.Peer), find(t.cfg.RTCP)
		if !t.armed && (t.cfg.Peer == 0 || t.peer != nil) {
			if l.ctl(unix.EPOLL_CTL_MOD, t.cfg.FD, t.slot) == nil {
				t.armed = true
				if t.altSlot >= 0 {
					_ = l.ctl(unix.EPOLL_CTL_MOD, t.cfg.AltFD, t.altSlot)
				}
			}
		}
	}
}

func (l *loop) allocSlot() int32 {
	if n := len(l.free); n > 0 {
		slot := l.free[n-1]
		l.free = l.free[:n-1]
		return slot
	}
	l.slots = append(l.slots, nil)
	return int32(len(l.slots) - 1)
}

// ctl adds or modifies fd in the epoll set with slot as its data.
func (l *loop) ctl(op, fd int, slot int32) error {
	return l.ctlEvents(op, fd, slot, unix.EPOLLIN)
}

// ctlEvents is ctl with the events to wait for (0: registered, not armed).
func (l *loop) ctlEvents(op, fd int, slot int32, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: slot}
	if err := unix.EpollCtl(l.epfd, op, fd, &ev); err != nil {
		return fmt.Errorf("fd %d: %w", fd, syscallErr("epoll_ctl", err))
	}
	return nil
}

// events are the epoll events s's sockets wait for (none until armed).
func (s *stream) events() uint32 {
	if s.armed {
		return unix.EPOLLIN
	}
	return 0
}

// setAlt makes fd (0: none) s's second socket in the epoll set, in a slot
// of its own, in place of the one it had. s.cfg still names the old one.
func (l *loop) setAlt(s *stream, fd int) error {
	if s.altSlot >= 0 {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.cfg.AltFD, nil)
		l.slots[s.altSlot] = nil
		l.free = append(l.free, s.altSlot)
		s.altSlot = -1
	}
	if fd == 0 {
		return nil
	}
	slot := l.allocSlot()
	if err := l.ctlEvents(unix.EPOLL_CTL_ADD, fd, slot, s.events()); err != nil {
		l.free = append(l.free, slot)
		return err
	}
	l.slots[slot] = s
	s.altSlot = slot
	return nil
}
