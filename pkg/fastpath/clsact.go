package fastpath

// Mode AttachClsact: our direct-action bpf filter on the ingress hook of
// a device's clsact qdisc, put, found and deleted through netlink.

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The filter that [FastPath.Attach] puts on the ingress hook (parent
// ffff:fff2) of a device's clsact qdisc in mode AttachClsact. "tc filter
// show dev DEV ingress" shows it as
//
//	filter protocol all pref 1 bpf chain 0 handle 0x7274 rtpkit_fastpath direct-action ...
//
// Priority 1, the lowest number, runs it before the filters of any other
// priority (tc gives those it numbers itself 49152 and below), as TCX puts
// the program first. Its priority and handle identify it: Attach replaces
// the filter found there (after checking its name), and Detach deletes
// it.
const (
	// ClsactFilterName is the filter's name (TCA_BPF_NAME).
	ClsactFilterName = "rtpkit_fastpath"
	// ClsactFilterPriority is the filter's priority ("pref").
	ClsactFilterPriority = 1
	// ClsactFilterHandle is the filter's handle ("rt").
	ClsactFilterHandle = 0x7274
)

// netlinkTimeout bounds every netlink request and reply.
const netlinkTimeout = 5 * time.Second

// attachClsact puts the filter on the device (replacing ours if there)
// and then removes a TCX link pinned for it.
func (f *FastPath) attachClsact(ifindex int) (*attachment, error) {
	h, err := newNetlink()
	if err != nil {
		return nil, err
	}
	if err := putFilter(h, ifindex, f.objs.FastpathIngress.FD()); err != nil {
		h.Close()
		return nil, err
	}
	if f.pinDir != "" {
		path := f.linkPin(ifindex)
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			h.Close() // the filter stays, as after Close with a PinDir
			return nil, fmt.Errorf("load pinned TCX link %s: %w", path, err)
		}
		if err == nil {
			if err := unpinClose(l); err != nil {
				h.Close()
				return nil, fmt.Errorf("TCX link %s: %w", path, err)
			}
		}
	}
	return &attachment{ifindex: ifindex, nl: h}, nil
}

// newNetlink opens a rtnetlink socket in the calling thread's network
// namespace, with a timeout.
func newNetlink() (*netlink.Handle, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := h.SetSocketTimeout(netlinkTimeout); err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink socket timeout: %w", err)
	}
	return h, nil
}

// ourFilter is the filter on the ingress hook of ifindex, with program fd
// (-1: none, to delete it).
func ourFilter(ifindex, fd int) *netlink.BpfFilter {
	return &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex,
			Parent:    netlink.HANDLE_MIN_INGRESS,
			Priority:  ClsactFilterPriority,
			Handle:    ClsactFilterHandle,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           fd,
		Name:         ClsactFilterName,
		DirectAction: true,
	}
}

// putFilter makes sure that ifindex has a clsact qdisc and puts (or
// replaces, atomically) our filter with program fd on its ingress hook.
func putFilter(h *netlink.Handle, ifindex, fd int) error {
	if err := ensureClsact(h, ifindex); err != nil {
		return err
	}
	found, err := findFilter(h, ifindex)
	if err != nil {
		return err
	}
	if found != nil && found.Name != ClsactFilterName {
		return fmt.Errorf("the ingress filter with priority %d and handle %#x is not ours (%q)", ClsactFilterPriority, ClsactFilterHandle, found.Name)
	}
	if err := h.FilterReplace(ourFilter(ifindex, fd)); err != nil {
		return fmt.Errorf("put ingress filter: %w", err)
	}
	return nil
}

// ensureClsact adds a clsact qdisc to ifindex unless it has one.
func ensureClsact(h *netlink.Handle, ifindex int) error {
	has, err := hasClsact(h, ifindex)
	if err != nil || has {
		return err
	}
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: ifindex,
		Handle:    netlink.MakeHandle(0xffff, 0),
		Parent:    netlink.HANDLE_CLSACT,
	}}
	err = h.QdiscAdd(q)
	if errors.Is(err, unix.EEXIST) {
		// Someone else added one since, or the device has an ingress
		// qdisc, which holds the same handle.
		if has, lerr := hasClsact(h, ifindex); lerr != nil || has {
			return lerr
		}
		return fmt.Errorf("add clsact qdisc: the device has another ingress qdisc: %w", err)
	}
	if err != nil {
		return fmt.Errorf("add clsact qdisc: %w", err)
	}
	return nil
}

// dumpRetries bounds the retries of a netlink dump that the kernel reports
// as interrupted (changed while being dumped).
const dumpRetries = 5

// hasClsact reports whether ifindex has a clsact qdisc.
func hasClsact(h *netlink.Handle, ifindex int) (bool, error) {
	dev := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}
	var (
		qs  []netlink.Qdisc
		err error
	)
	for range dumpRetries {
		if qs, err = h.QdiscList(dev); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("list qdiscs: %w", err)
	}
	for _, q := range qs {
		if q.Attrs().LinkIndex == ifindex && q.Type() == "clsact" {
			return true, nil
		}
	}
	return false, nil
}

// findFilter returns the bpf filter with our priority and handle on the
// ingress hook of ifindex (whoever put it there), or nil. The device must
// have a clsact qdisc. A filter of another kind there is an error.
func findFilter(h *netlink.Handle, ifindex int) (*netlink.BpfFilter, error) {
	dev := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}
	var (
		fs  []netlink.Filter
		err error
	)
	for range dumpRetries {
		if fs, err = h.FilterList(dev, netlink.HANDLE_MIN_INGRESS); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list ingress filters: %w", err)
	}
	for _, fl := range fs {
		a := fl.Attrs()
		if a.Priority != ClsactFilterPriority || a.Handle != ClsactFilterHandle {
			continue
		}
		bf, ok := fl.(*netlink.BpfFilter)
		if !ok {
			return nil, fmt.Errorf("the ingress filter with priority %d and handle %#x is a %s filter, not ours", ClsactFilterPriority, ClsactFilterHandle, fl.Type())
		}
		return bf, nil
	}
	return nil, nil
}

// removeFilter deletes our filter from the ingress hook of ifindex, in the
// calling thread's network namespace, if it is there.
func removeFilter(ifindex int) error {
	h, err := newNetlink()
	if err != nil {
		return err
	}
	defer h.Close()
	has, err := hasClsact(h, ifindex)
	if err != nil || !has {
		return err
	}
	found, err := findFilter(h, ifindex)
	if err != nil || found == nil || found.Name != ClsactFilterName {
		return err
	}
	return deleteFilter(h, ifindex)
}

// deleteFilter deletes our filter from the ingress hook of ifindex. A
// filter, qdisc or device that is gone already is no error.
func deleteFilter(h *netlink.Handle, ifindex int) error {
	err := h.FilterDel(ourFilter(ifindex, -1))
	if err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
		return nil
	}
	return fmt.Errorf("delete ingress filter: %w", err)
}
