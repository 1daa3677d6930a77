package rtpfwd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/fastpath"
	"github.com/rtpkit/rtpkit/pkg/fwd"
)

// Fast-path modes (--fast-path).
const (
	// FastPathAuto uses the in-kernel fast path when the kernel and the
	// process's privileges allow it, and userspace otherwise.
	FastPathAuto = "auto"
	// FastPathOn refuses to start without the fast path.
	FastPathOn = "on"
	// FastPathOff forwards everything in userspace, and takes back
	// whatever an earlier run left offloaded.
	FastPathOff = "off"
)

// offloader moves latched streams into the kernel fast path (package
// fastpath) and takes them back, following rtpengine's policy: a stream is
// offloaded once userspace has confirmed both its own party's endpoint and
// its peer's (so strict-source, media-handover and asymmetric are settled),
// and taken back as soon as anything about it changes — new signalling, a
// re-latch, a delete, portd revoking the socket. Both IPv4 and IPv6
// streams are offloaded, but not a stream whose legs are of different
// families (the program does not translate between them). Packets the
// program does not handle (IPv6 with extension headers, fragments, a
// strict stream's packets from another source, muxed RTCP that must go to
// a separate RTCP socket) reach the stream's socket as before.
//
// All of its state is guarded by the reconciler's mutex: its methods are
// called with r.mu held.
type offloader struct {
	mode   string
	pinDir string
	log    *slog.Logger

	fp     *fastpath.FastPath // nil: userspace only (so far)
	failed bool               // auto mode: the fast path could not be opened; do not retry

	// entries are the streams in the kernel, by local socket, as put.
	entries map[netip.AddrPort]fastpath.Entry
	// adopted are entries found in the pinned maps at start that no
	// stream of this run has confirmed yet (see reconciler.adoptLocked).
	adopted map[netip.AddrPort]bool
	// base accumulates the counters of entries taken back, so a stream's
	// merged counters never go down.
	base map[netip.AddrPort]fastpath.Counters
	// attached devices (ifindex) and devices whose attach failed (logged
	// once).
	attached, broken map[int]bool
	// routes caches the egress device per destination; cleared with every
	// device scan.
	routes map[netip.Addr]int
	// sockOpts caches the TOS and TTL our egress sockets send with.
	sockOpts map[netip.AddrPort][2]uint8

	lastPutErr time.Time
}

func newOffloader(mode, pinDir string, log *slog.Logger) *offloader {
	return &offloader{mode: mode, pinDir: pinDir, log: log,
		entries: map[netip.AddrPort]fastpath.Entry{}, adopted: map[netip.AddrPort]bool{},
		base: map[netip.AddrPort]fastpath.Counters{}, attached: map[int]bool{}, broken: map[int]bool{},
		routes: map[netip.Addr]int{}, sockOpts: map[netip.AddrPort][2]uint8{}}
}

// start prepares the fast path at rtp-fwd's start: with "on" it opens it
// (an error stops rtp-fwd); with "auto" it opens it only if an earlier
// run left pinned maps to adopt (otherwise it waits for the first media
// address the program can serve: a node on loopback never mounts
// anything); with "off" it takes back what an earlier run left.
func (o *offloader) start() error {
	switch o.mode {
	case FastPathOn:
		return o.open()
	case FastPathAuto:
		if hasPins(o.pinDir) {
			if err := o.open(); err != nil {
				o.failed = true
				o.log.Warn("fast path unavailable: forwarding in userspace", "err", err)
			}
		}
		return nil
	default:
		if hasPins(o.pinDir) {
			o.clearPinned()
		}
		o.log.Info("fast path off (--fast-path=off): forwarding in userspace")
		return nil
	}
}

// hasPins reports whether dir is on a bpffs and holds pinned objects.
func hasPins(dir string) bool {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil || st.Type != unix.BPF_FS_MAGIC {
		return false
	}
	ents, err := os.ReadDir(dir)
	return err == nil && len(ents) > 0
}

// open loads (or adopts) the program and maps and attaches to the devices.
func (o *offloader) open() error {
	fp, err := fastpath.Open(fastpath.Options{PinDir: o.pinDir})
	if err != nil {
		return fmt.Errorf("fast path: %w", err)
	}
	found, err := fp.Streams()
	if err != nil {
		_ = fp.Close()
		return fmt.Errorf("fast path: %w", err)
	}
	o.fp = fp
	for local, e := range found {
		o.entries[local] = e
		o.adopted[local] = true
	}
	o.scanDevices()
	if len(o.attached) == 0 {
		err := errors.New("fast path: could not attach to any network device")
		o.close()
		return err
	}
	o.log.Info("fast path on: latched streams are forwarded in the kernel", "pin_dir", o.pinDir,
		"devices", len(o.attached), "adopted_streams", len(found))
	return nil
}

// clearPinned takes back every stream an earlier run left in the kernel
// and removes the pins, so the fast path is gone once the maps are freed.
func (o *offloader) clearPinned() {
	fp, err := fastpath.Open(fastpath.Options{PinDir: o.pinDir})
	if err != nil {
		o.log.Warn("fast path off: could not open the pinned fast path to remove it", "pin_dir", o.pinDir, "err", err)
		return
	}
	found, err := fp.Streams()
	if err == nil {
		for local := range found {
			_, _ = fp.Delete(local)
		}
	}
	o.fp = fp
	o.scanDevices() // adopts the pinned attachments, so Detach removes them
	for ifindex := range o.attached {
		if err := fp.Detach(ifindex); err != nil {
			o.log.Warn("fast path off: detach", "ifindex", ifindex, "err", err)
		}
	}
	if err := fp.Unpin(); err != nil {
		o.log.Warn("fast path off: unpin", "err", err)
	}
	o.close()
	o.attached = map[int]bool{}
	o.log.Info("fast path off: took back the streams an earlier run left in the kernel", "streams", len(found))
}

// close releases this process's handles. Pinned maps and attachments stay
// in the kernel: offloaded streams keep flowing until the next run adopts
// them.
func (o *offloader) close() {
	if o.fp != nil {
		_ = o.fp.Close()
		o.fp = nil
	}
}

// servable reports whether a socket's address can be served by the
// program: IPv4 or IPv6, not loopback (a node on loopback stays in
// userspace), not IPv6 link-local (scoped to one link).
func servable(local netip.AddrPort) bool {
	a := local.Addr().Unmap()
	return a.IsValid() && a.Zone() == "" && !a.IsLoopback() && !a.IsUnspecified() && !a.IsLinkLocalUnicast()
}

// socketArrived opens the fast path in auto mode when the first socket it
// could serve arrives.
func (o *offloader) socketArrived(local netip.AddrPort) {
	if o.mode != FastPathAuto || o.fp != nil || o.failed || !servable(local) {
		return
	}
	if err := o.open(); err != nil {
		o.failed = true
		o.log.Warn("fast path unavailable: forwarding in userspace", "err", err)
	}
}

// scanDevices attaches the program to every network device that is up
// and not a loopback device: the packets of a media address can arrive on
// any of them (a service address routed to the node, say), and the
// program hands every packet it does not serve to the stack unchanged.
func (o *offloader) scanDevices() {
	clear(o.routes)
	ifs, err := net.Interfaces()
	if err != nil {
		o.log.Warn("fast path: list network devices", "err", err)
		return
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || o.attached[ifc.Index] || o.broken[ifc.Index] {
			continue
		}
		if err := o.fp.Attach(ifc.Index); err != nil {
			o.broken[ifc.Index] = true
			o.log.Warn("fast path: not attached to device; packets arriving there stay in userspace", "device", ifc.Name, "err", err)
			continue
		}
		o.attached[ifc.Index] = true
		o.log.Debug("fast path attached", "device", ifc.Name)
	}
}

// egress returns the device a packet to dst leaves from; false if there
// is no route, or dst is on the node itself (the loopback device: such a
// party stays in userspace).
func (o *offloader) egress(dst netip.Addr) (int, bool) {
	if i, ok := o.routes[dst]; ok {
		return i, i > 0
	}
	i, err := fastpath.RouteIfIndex(dst)
	if err != nil {
		i = 0
	} else if ifc, err := net.InterfaceByIndex(i); err != nil || ifc.Flags&net.FlagLoopback != 0 {
		i = 0
	}
	o.routes[dst] = i
	return i, i > 0
}

// socketOpts returns the TOS and TTL that socket fd (bound to local)
// sends with, so offloaded packets leave exactly as rtp-fwd would send
// them: for an IPv6 socket its traffic class and unicast hop limit.
func (o *offloader) socketOpts(local netip.AddrPort, fd int) (tos, ttl uint8) {
	if v, ok := o.sockOpts[local]; ok {
		return v[0], v[1]
	}
	level, tosOpt, ttlOpt := unix.IPPROTO_IP, unix.IP_TOS, unix.IP_TTL
	if d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil && d == unix.AF_INET6 {
		level, tosOpt, ttlOpt = unix.IPPROTO_IPV6, unix.IPV6_TCLASS, unix.IPV6_UNICAST_HOPS
	}
	t, err1 := unix.GetsockoptInt(fd, level, tosOpt)
	l, err2 := unix.GetsockoptInt(fd, level, ttlOpt)
	if err1 != nil || err2 != nil || l <= 0 || l > 255 {
		t, l = 0, 64
	}
	o.sockOpts[local] = [2]uint8{uint8(t), uint8(l)}
	return uint8(t), uint8(l)
}

// put offloads local (or updates its entry).
func (o *offloader) put(local netip.AddrPort, e fastpath.Entry) {
	if err := o.fp.Put(local, e); err != nil {
		delete(o.entries, local)
		if time.Since(o.lastPutErr) > 10*time.Second {
			o.lastPutErr = time.Now()
			o.log.Warn("fast path: stream stays in userspace", "local", local, "err", err)
		}
		return
	}
	o.entries[local] = e
	delete(o.adopted, local)
}

// take takes local back to userspace, keeping its counters in base.
func (o *offloader) take(local netip.AddrPort) {
	if _, ok := o.entries[local]; !ok || o.fp == nil {
		return
	}
	c, err := o.fp.Delete(local)
	if err != nil {
		o.log.Warn("fast path: take back stream", "local", local, "err", err)
	}
	delete(o.entries, local)
	delete(o.adopted, local)
	o.base[local] = addCounters(o.base[local], c)
}

// forget drops what is kept about a socket that is gone.
func (o *offloader) forget(local netip.AddrPort) {
	o.take(local)
	delete(o.base, local)
	delete(o.sockOpts, local)
}

// kernel returns local's fast-path counters: those of the current entry
// plus those of earlier ones.
func (o *offloader) kernel(local netip.AddrPort) (fastpath.Counters, bool) {
	c := o.base[local]
	_, on := o.entries[local]
	if on && o.fp != nil {
		if k, err := o.fp.Counters(local); err == nil {
			c = addCounters(c, k)
		}
	}
	return c, on
}

func addCounters(a, b fastpath.Counters) fastpath.Counters {
	a.Packets += b.Packets
	a.Bytes += b.Bytes
	a.SourceMismatch += b.SourceMismatch
	a.Passed += b.Passed
	if b.LastPacket.After(a.LastPacket) {
		a.LastPacket, a.SSRC = b.LastPacket, b.SSRC
	}
	return a
}

// mergeKernel adds a stream's fast-path counters to its userspace ones.
func mergeKernel(st fwd.Counters, k fastpath.Counters) fwd.Counters {
	st.Packets += k.Packets
	st.Bytes += k.Bytes
	st.FloodDrops += k.FloodDrops
	if k.LastPacket.After(st.LastPacket) {
		st.LastPacket = k.LastPacket
		if k.SSRC != 0 {
			st.SSRC = k.SSRC
		}
	}
	return st
}

// DefaultPinDir is where rtp-fwd pins the fast path's maps and links
// under its runtime directory.
func DefaultPinDir(runtimeDir string) string { return filepath.Join(runtimeDir, "bpf") }
