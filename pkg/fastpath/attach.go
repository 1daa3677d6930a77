package fastpath

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// AttachMode says how [FastPath.Attach] hooks the program into the ingress
// of a device.
type AttachMode int

const (
	// AttachAuto is AttachTCX when the kernel has TCX (6.6+) and
	// AttachClsact otherwise; [Open] probes the kernel.
	AttachAuto AttachMode = iota
	// AttachTCX attaches with a TCX link. Kernels without TCX make
	// [FastPath.Attach] fail with an error wrapping ebpf.ErrNotSupported.
	AttachTCX
	// AttachClsact attaches as a direct-action bpf filter on the ingress
	// hook of the device's clsact qdisc, through netlink: the fallback for
	// kernels without TCX, such as Debian 12's 6.1.
	AttachClsact
)

// String returns "auto", "tcx" or "clsact".
func (m AttachMode) String() string {
	switch m {
	case AttachAuto:
		return "auto"
	case AttachTCX:
		return "tcx"
	case AttachClsact:
		return "clsact"
	}
	return "AttachMode(" + strconv.Itoa(int(m)) + ")"
}

// attachment is the program's hook on one device: a TCX link, or a clsact
// filter together with the netlink socket that put it there (a socket
// stays in the network namespace it was created in, so Detach and Close
// reach the same device whatever thread calls them).
type attachment struct {
	tcx link.Link       // AttachTCX
	nl  *netlink.Handle // AttachClsact
	// adopted: the TCX link was pinned by an earlier run.
	adopted bool
	ifindex int
}

// Mode returns how [FastPath.Attach] hooks the program into devices:
// AttachTCX or AttachClsact (never AttachAuto, which Open resolves), for
// example for the daemon to log once.
func (f *FastPath) Mode() AttachMode { return f.mode }

// haveTCX reports whether the kernel has TCX, by attaching prog to a device
// that does not exist: that fails with ENODEV where the kernel has TCX, and
// with an error wrapping ebpf.ErrNotSupported (ebpf's own probe) where it
// has not.
func haveTCX(prog *ebpf.Program) bool {
	l, err := link.AttachTCX(link.TCXOptions{
		Interface: math.MaxInt32,
		Program:   prog,
		Attach:    ebpf.AttachTCXIngress,
	})
	if err == nil {
		l.Close()
		return true
	}
	return !errors.Is(err, ebpf.ErrNotSupported)
}

// linkPin is where the TCX link on device ifindex is pinned.
func (f *FastPath) linkPin(ifindex int) string {
	return filepath.Join(f.pinDir, "tcx_ingress_"+strconv.Itoa(ifindex))
}

// Attach attaches the program to the ingress of device ifindex, in the
// network namespace of the calling thread, the way [FastPath.Mode] says.
// Attaching twice to one device is a no-op.
//
// With TCX, the program is attached as the first one there. With a PinDir,
// the link is pinned; a link already pinned for this device (left by an
// earlier run) is adopted and switched to this run's program atomically,
// so that forwarding never stops. Kernels without TCX (before 6.6) return
// an error wrapping ebpf.ErrNotSupported (AttachAuto picks clsact there).
//
// With clsact, the device gets a clsact qdisc if it has none (Detach and
// Close leave it in place: other filters may use it), and the program goes
// on its ingress hook as a direct-action bpf filter named
// [ClsactFilterName], with priority [ClsactFilterPriority] and handle
// [ClsactFilterHandle]. A tc filter keeps its program and maps alive by
// itself, so nothing is pinned for it; instead, with a PinDir, Close
// leaves the filter in place and forwarding goes on after the process. A
// filter of ours already there (left by an earlier run, pinned or crashed)
// is replaced with this run's program atomically: no gap, and never a
// second filter. Attach fails if a filter that is not ours holds that
// priority and handle, or if the device has an ingress qdisc instead of
// clsact.
//
// Once the new hook is in place, Attach removes what the other mode left
// on the device: with TCX, a filter of ours; with clsact, a TCX link
// pinned under PinDir.
func (f *FastPath) Attach(ifindex int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("fastpath: attach: closed")
	}
	if _, ok := f.links[ifindex]; ok {
		return nil
	}
	var (
		a   *attachment
		err error
	)
	if f.mode == AttachClsact {
		a, err = f.attachClsact(ifindex)
	} else {
		a, err = f.attachTCX(ifindex)
	}
	if err != nil {
		return fmt.Errorf("fastpath: attach to ifindex %d (%s): %w", ifindex, f.mode, err)
	}
	f.links[ifindex] = a
	return nil
}

// attachTCX attaches with TCX (adopting a pinned link) and then removes a
// clsact filter of ours from the device.
func (f *FastPath) attachTCX(ifindex int) (*attachment, error) {
	a := &attachment{ifindex: ifindex}
	if f.pinDir != "" {
		l, err := f.adoptTCX(ifindex)
		if err != nil {
			return nil, err
		}
		a.tcx, a.adopted = l, l != nil
	}
	if a.tcx == nil {
		l, err := link.AttachTCX(link.TCXOptions{
			Interface: ifindex,
			Program:   f.objs.FastpathIngress,
			Attach:    ebpf.AttachTCXIngress,
			Anchor:    link.Head(),
		})
		if err != nil {
			return nil, err
		}
		if f.pinDir != "" {
			if err := l.Pin(f.linkPin(ifindex)); err != nil {
				l.Close()
				return nil, fmt.Errorf("pin link: %w", err)
			}
		}
		a.tcx = l
	}
	if err := removeFilter(ifindex); err != nil {
		// A stale program behind ours would still see (and might forward)
		// what ours passes on. Undo this call, but keep an adopted link
		// pinned: it forwarded before and goes on doing so.
		if a.adopted {
			a.tcx.Close()
		} else {
			a.detach()
		}
		return nil, fmt.Errorf("remove the clsact filter left by an earlier run: %w", err)
	}
	return a, nil
}

// adoptTCX takes over the link pinned for ifindex, if there is one that
// still attaches a program to that device, and updates it to this run's
// program. A stale pin (its device is gone) is removed. It returns nil,
// nil when there is nothing to adopt.
func (f *FastPath) adoptTCX(ifindex int) (link.Link, error) {
	path := f.linkPin(ifindex)
	l, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load pinned link %s: %w", path, err)
	}
	info, err := l.Info()
	if err == nil && info.TCX() != nil && int(info.TCX().Ifindex) == ifindex {
		if err := l.Update(f.objs.FastpathIngress); err != nil {
			l.Close()
			return nil, fmt.Errorf("update pinned link %s: %w", path, err)
		}
		return l, nil
	}
	// Defunct (device removed) or not ours: forget it.
	if err := unpinClose(l); err != nil {
		return nil, fmt.Errorf("stale link %s: %w", path, err)
	}
	return nil, nil
}

// detach removes the hook: it unpins and closes a TCX link (which detaches
// it) or deletes the filter.
func (a *attachment) detach() error {
	if a.tcx != nil {
		return unpinClose(a.tcx)
	}
	defer a.nl.Close()
	return deleteFilter(a.nl, a.ifindex)
}

// release lets go of the hook: a pinned TCX link stays (an unpinned one is
// detached by closing it), and the filter stays if keep is set.
func (a *attachment) release(keep bool) error {
	if a.tcx != nil {
		return a.tcx.Close()
	}
	defer a.nl.Close()
	if keep {
		return nil
	}
	return deleteFilter(a.nl, a.ifindex)
}

// unpinClose removes l's pin (if any) and closes it, which detaches it.
func unpinClose(l link.Link) error {
	var errs []error
	if err := l.Unpin(); err != nil {
		errs = append(errs, fmt.Errorf("unpin link: %w", err))
	}
	if err := l.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close link: %w", err))
	}
	return errors.Join(errs...)
}

// Detach detaches the program from device ifindex: it closes and unpins
// the TCX link, or deletes the clsact filter, also with a PinDir.
// Detaching a device the program is not attached to is a no-op.
func (f *FastPath) Detach(ifindex int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.links[ifindex]
	if !ok {
		return nil
	}
	delete(f.links, ifindex)
	if err := a.detach(); err != nil {
		return fmt.Errorf("fastpath: detach from ifindex %d: %w", ifindex, err)
	}
	return nil
}

// Unpin removes the pins of the maps and of every attached TCX link, and
// makes Close delete the clsact filters, so that Close detaches the
// program and frees the maps as if nothing had been pinned. Use it when
// the fast path is being switched off for good.
func (f *FastPath) Unpin() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	f.keep = false
	for _, a := range f.links {
		if a.tcx == nil {
			continue
		}
		if err := a.tcx.Unpin(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, m := range []*ebpf.Map{f.objs.FpStreams, f.objs.FpStats, f.objs.FpStreams6, f.objs.FpStats6} {
		if err := m.Unpin(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fastpath: unpin: %w", err)
	}
	return nil
}

// Close releases the program and the maps. Without a PinDir (or after
// Unpin), the program is detached from every device (their streams go to
// the normal stack again) and the maps are freed. With one, pinned TCX
// links, clsact filters and pinned maps stay in the kernel and keep
// forwarding until a later run adopts them ([Open] with the same PinDir,
// then [FastPath.Attach]) or they are removed.
func (f *FastPath) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	var errs []error
	for ifindex, a := range f.links {
		if err := a.release(f.keep); err != nil {
			errs = append(errs, fmt.Errorf("ifindex %d: %w", ifindex, err))
		}
		delete(f.links, ifindex)
	}
	if err := f.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fastpath: close: %w", err)
	}
	return nil
}
