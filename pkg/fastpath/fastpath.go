// Package fastpath is rtpkit's in-kernel fast path (issue 10): an eBPF TC
// program that forwards the packets of offloaded streams without waking
// rtp-fwd, on a stock kernel (no kernel module).
//
// The program (bpf/fastpath.c) runs at the ingress of the devices it is
// attached to. A plain IPv4/UDP packet (no IP options, not a fragment)
// whose destination address and port are the local socket of an offloaded
// stream is rewritten — source to our egress socket, destination to the
// peer's endpoint, checksums fixed incrementally — counted per CPU and
// redirected out of the egress device with bpf_redirect_neigh. Every other
// packet, and every packet of a strict stream from another source,
// continues up the normal stack, where rtp-fwd's socket receives it as
// before.
//
// Use [Open] to load the program and its maps, [FastPath.Attach] on every
// device that carries a media address, [FastPath.Put] and
// [FastPath.Delete] to offload streams and take them back, and
// [FastPath.Counters] for their counters. It needs CAP_BPF and
// CAP_NET_ADMIN (or root) and a kernel with TCX (6.6+); the netlink clsact
// fallback for older kernels is not written yet.
//
// Limits of this first step: IPv4 only (IPv6 packets go to the stack);
// forwarded packets skip the proxy's netfilter (conntrack, OUTPUT rules),
// as with rtpengine's kernel module; the egress MTU is not checked (RTP
// datagrams are far below it); a GRO aggregate, a datagram whose headers
// are not in the linear part of the buffer, or one to a stream being put
// or deleted at that instant goes to the stack.
package fastpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// DefaultMaxStreams is the capacity of the stream and counter maps when
// [Options.MaxStreams] is 0.
const DefaultMaxStreams = 65536

// Entry flags; they mirror FP_F_* in bpf/fastpath.c.
const (
	flagStrict   = 1 << 0
	flagPassRTCP = 1 << 1
	flagSetTOS   = 1 << 2
	flagSetTTL   = 1 << 3
)

// Options configure [Open].
type Options struct {
	// PinDir, when not empty, is a directory on a BPF filesystem where the
	// maps are pinned (and, by [FastPath.Attach], the TCX links), so that
	// they and the forwarding of offloaded streams outlive the process. If
	// PinDir is not on a bpffs, Open creates it and mounts one there (mode
	// 0700), for example under the node's runtime directory as
	// <runtime-dir>/bpf. Maps already pinned there are reused with their
	// contents (adoption after a restart) if their layout matches; a map
	// whose layout or size differs makes Open fail.
	PinDir string
	// MaxStreams is the capacity of the maps: how many streams can be
	// offloaded at once. 0 means DefaultMaxStreams.
	MaxStreams uint32
}

// FastPath is the loaded program and its maps. Its methods are safe for
// concurrent use.
type FastPath struct {
	objs   fastpathObjects
	pinDir string
	ncpu   int

	mu     sync.Mutex
	links  map[int]link.Link // by ifindex
	closed bool
}

// Entry says where the packets that arrive at an offloaded stream's local
// socket go. All addresses are IPv4 (IPv4-mapped IPv6 addresses are
// accepted and unmapped).
type Entry struct {
	// Source is our egress socket: the packets leave with this source
	// address and port, as if rtp-fwd had sent them from that socket.
	Source netip.AddrPort
	// Dest is the peer's endpoint (learned or signalled): the packets'
	// new destination.
	Dest netip.AddrPort
	// Strict: only packets from Expect are forwarded; packets from any
	// other source go to the normal stack (rtp-fwd then drops or re-latches
	// them by its own rules — use it for strict-source and media-handover
	// streams) and are counted in Counters.SourceMismatch. Without Strict,
	// packets from any source are forwarded.
	Strict bool
	// Expect is the expected (latched) source, with Strict.
	Expect netip.AddrPort
	// PassRTCP hands muxed RTCP (second byte 194–223, RFC 5761) to the
	// normal stack instead of forwarding it, counted in Counters.Passed.
	PassRTCP bool
	// IfIndex is the egress device, in the network namespace the program
	// is attached in; 0 means the device the packet arrived on.
	// bpf_redirect_neigh looks up the route and the neighbour (gateway or
	// the destination itself) on it.
	IfIndex int
	// SetTOS makes the packets leave with IP TOS byte TOS (our sockets'
	// DSCP) instead of the sender's.
	SetTOS bool
	// TOS is the TOS byte, with SetTOS.
	TOS uint8
	// SetTTL makes the packets leave with IP TTL TTL (what a packet sent
	// by rtp-fwd would carry) instead of the sender's.
	SetTTL bool
	// TTL is the TTL, with SetTTL; it must not be 0.
	TTL uint8
}

// Counters are an offloaded stream's counters, summed over the CPUs. They
// count only what the fast path handled; packets that went to the normal
// stack are counted there (by rtp-fwd), except the two pass counters.
type Counters struct {
	// Packets and Bytes (UDP payload bytes) count the packets forwarded
	// in the kernel.
	Packets, Bytes uint64
	// LastPacket is the wall-clock time of the last forwarded packet
	// (zero if none). The program records CLOCK_BOOTTIME
	// (bpf_ktime_get_boot_ns), which keeps counting during suspend; it is
	// converted with the current offset between CLOCK_REALTIME and
	// CLOCK_BOOTTIME, so a wall-clock step moves it like it moves
	// time.Now.
	LastPacket time.Time
	// SSRC is the SSRC of the last forwarded RTP packet (0 if none).
	SSRC uint32
	// SourceMismatch counts packets of a Strict entry from a source other
	// than Expect, given to the normal stack.
	SourceMismatch uint64
	// Passed counts muxed RTCP given to the normal stack (PassRTCP).
	Passed uint64
}

// Open loads the program and its maps into the kernel (adopting the pinned
// maps under opts.PinDir, if any). It removes the memlock rlimit, which
// kernels before 5.11 charge BPF maps to. Close releases them.
func Open(opts Options) (*FastPath, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	spec, err := loadFastpath()
	if err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	size := opts.MaxStreams
	if size == 0 {
		size = DefaultMaxStreams
	}
	var copts ebpf.CollectionOptions
	for _, name := range []string{fastpathMapFpStreams, fastpathMapFpStats} {
		spec.Maps[name].MaxEntries = size
		if opts.PinDir != "" {
			spec.Maps[name].Pinning = ebpf.PinByName
		}
	}
	if opts.PinDir != "" {
		if err := mountBPFFS(opts.PinDir); err != nil {
			return nil, fmt.Errorf("fastpath: %w", err)
		}
		copts.Maps.PinPath = opts.PinDir
	}
	f := &FastPath{pinDir: opts.PinDir, ncpu: ncpu, links: map[int]link.Link{}}
	if err := spec.LoadAndAssign(&f.objs, &copts); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("fastpath: load: %+v", verr)
		}
		return nil, fmt.Errorf("fastpath: load: %w", err)
	}
	return f, nil
}

// mountBPFFS makes dir a directory on a BPF filesystem: it creates it and,
// unless it already is on one, mounts a bpffs there.
func mountBPFFS(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs on %s: %w", dir, err)
	}
	return nil
}

// linkPin is where the TCX link on device ifindex is pinned.
func (f *FastPath) linkPin(ifindex int) string {
	return filepath.Join(f.pinDir, "tcx_ingress_"+strconv.Itoa(ifindex))
}

// Attach attaches the program to the ingress of device ifindex with TCX,
// as the first program there, in the network namespace of the calling
// thread. With a PinDir, the link is pinned; a link already pinned for
// this device (left by an earlier run) is adopted and switched to this
// run's program atomically, so that forwarding never stops. Attaching
// twice to one device is a no-op.
//
// Kernels without TCX (before 6.6) return an error wrapping
// ebpf.ErrNotSupported. TODO(issue 10): fall back to a netlink clsact
// qdisc with a direct-action bpf filter there (Debian 12's 6.1).
func (f *FastPath) Attach(ifindex int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("fastpath: attach: closed")
	}
	if _, ok := f.links[ifindex]; ok {
		return nil
	}
	if f.pinDir != "" {
		l, err := f.adopt(ifindex)
		if err != nil {
			return err
		}
		if l != nil {
			f.links[ifindex] = l
			return nil
		}
	}
	l, err := link.AttachTCX(link.TCXOptions{
		Interface: ifindex,
		Program:   f.objs.FastpathIngress,
		Attach:    ebpf.AttachTCXIngress,
		Anchor:    link.Head(),
	})
	if err != nil {
		return fmt.Errorf("fastpath: attach to ifindex %d: %w", ifindex, err)
	}
	if f.pinDir != "" {
		if err := l.Pin(f.linkPin(ifindex)); err != nil {
			l.Close()
			return fmt.Errorf("fastpath: pin link of ifindex %d: %w", ifindex, err)
		}
	}
	f.links[ifindex] = l
	return nil
}

// adopt takes over the link pinned for ifindex, if there is one that still
// attaches a program to that device, and updates it to this run's program.
// A stale pin (its device is gone) is removed. It returns nil, nil when
// there is nothing to adopt.
func (f *FastPath) adopt(ifindex int) (link.Link, error) {
	path := f.linkPin(ifindex)
	l, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fastpath: load pinned link %s: %w", path, err)
	}
	info, err := l.Info()
	if err == nil && info.TCX() != nil && int(info.TCX().Ifindex) == ifindex {
		if err := l.Update(f.objs.FastpathIngress); err != nil {
			l.Close()
			return nil, fmt.Errorf("fastpath: update pinned link %s: %w", path, err)
		}
		return l, nil
	}
	// Defunct (device removed) or not ours: forget it.
	if err := l.Unpin(); err != nil {
		l.Close()
		return nil, fmt.Errorf("fastpath: unpin stale link %s: %w", path, err)
	}
	l.Close()
	return nil, nil
}

// Detach detaches the program from device ifindex (also when the link is
// pinned: the pin is removed). Detaching a device the program is not
// attached to is a no-op.
func (f *FastPath) Detach(ifindex int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[ifindex]
	if !ok {
		return nil
	}
	delete(f.links, ifindex)
	return detach(l)
}

// detach removes l's pin (if any) and closes it, which detaches it.
func detach(l link.Link) error {
	var errs []error
	if err := l.Unpin(); err != nil {
		errs = append(errs, err)
	}
	if err := l.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fastpath: detach: %w", err)
	}
	return nil
}

// Unpin removes the pins of the maps and of every attached link, so that
// Close detaches the program and frees the maps as if nothing had been
// pinned. Use it when the fast path is being switched off for good.
func (f *FastPath) Unpin() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, l := range f.links {
		if err := l.Unpin(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, m := range []*ebpf.Map{f.objs.FpStreams, f.objs.FpStats} {
		if err := m.Unpin(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fastpath: unpin: %w", err)
	}
	return nil
}

// Close releases the program and the maps. Links that are not pinned are
// detached (their streams go to the normal stack again); pinned links and
// maps stay in the kernel and keep forwarding until a later run adopts
// them ([Open] with the same PinDir, then [FastPath.Attach]) or they are
// removed.
func (f *FastPath) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	var errs []error
	for ifindex, l := range f.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
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

// Put offloads the stream whose local socket is local (or updates where
// its packets go). Its counters start at zero when it is new and are kept
// when it is updated. The change applies to the next packet.
func (f *FastPath) Put(local netip.AddrPort, e Entry) error {
	k, err := makeKey(local)
	if err != nil {
		return fmt.Errorf("fastpath: put: %w", err)
	}
	v, err := makeEntry(e)
	if err != nil {
		return fmt.Errorf("fastpath: put %s: %w", local, err)
	}
	// Counters first, so that the program finds them with the entry.
	zero := make([]fastpathFpCounters, f.ncpu)
	if err := f.objs.FpStats.Update(&k, zero, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return fmt.Errorf("fastpath: put %s: counters: %w", local, err)
	}
	if err := f.objs.FpStreams.Update(&k, &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("fastpath: put %s: %w", local, err)
	}
	return nil
}

// Delete takes the stream whose local socket is local back to userspace:
// its next packets go to the normal stack. It returns the stream's final
// counters (for userspace to add to its own) and removes them. Deleting a
// stream that is not offloaded returns zero counters and no error.
func (f *FastPath) Delete(local netip.AddrPort) (Counters, error) {
	k, err := makeKey(local)
	if err != nil {
		return Counters{}, fmt.Errorf("fastpath: delete: %w", err)
	}
	if err := f.objs.FpStreams.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return Counters{}, fmt.Errorf("fastpath: delete %s: %w", local, err)
	}
	c, err := f.counters(k)
	if err != nil {
		return Counters{}, fmt.Errorf("fastpath: delete %s: %w", local, err)
	}
	if err := f.objs.FpStats.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return Counters{}, fmt.Errorf("fastpath: delete %s: counters: %w", local, err)
	}
	return c, nil
}

// Counters returns the counters of the stream whose local socket is local,
// summed over the CPUs; zero counters if it has none (never offloaded, or
// deleted).
func (f *FastPath) Counters(local netip.AddrPort) (Counters, error) {
	k, err := makeKey(local)
	if err != nil {
		return Counters{}, fmt.Errorf("fastpath: counters: %w", err)
	}
	c, err := f.counters(k)
	if err != nil {
		return Counters{}, fmt.Errorf("fastpath: counters of %s: %w", local, err)
	}
	return c, nil
}

func (f *FastPath) counters(k fastpathFpKey) (Counters, error) {
	var per []fastpathFpCounters
	if err := f.objs.FpStats.Lookup(&k, &per); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Counters{}, nil
		}
		return Counters{}, err
	}
	var c Counters
	var last uint64
	for _, p := range per {
		c.Packets += p.Packets
		c.Bytes += p.Bytes
		c.SourceMismatch += p.SrcMismatch
		c.Passed += p.Pass
		if p.LastNs > last {
			last = p.LastNs
			if p.Ssrc != 0 {
				c.SSRC = binary.BigEndian.Uint32(binary.NativeEndian.AppendUint32(nil, p.Ssrc))
			}
		}
	}
	if last != 0 {
		c.LastPacket = bootToWall(last)
	}
	return c, nil
}

// Streams returns every offloaded stream, by local socket: what the maps
// hold, for example after adopting pinned maps.
func (f *FastPath) Streams() (map[netip.AddrPort]Entry, error) {
	out := map[netip.AddrPort]Entry{}
	var (
		k fastpathFpKey
		v fastpathFpEntry
	)
	it := f.objs.FpStreams.Iterate()
	for it.Next(&k, &v) {
		out[keyAddrPort(k)] = entryFromMap(v)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("fastpath: streams: %w", err)
	}
	return out, nil
}

// bootToWall converts a CLOCK_BOOTTIME reading in nanoseconds to wall-clock
// time.
func bootToWall(ns uint64) time.Time {
	now := time.Now()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}
	}
	return now.Add(-time.Duration(uint64(ts.Nano()) - ns))
}

// ipv4 returns ap's address as 4 bytes, refusing anything but IPv4.
func ipv4(ap netip.AddrPort) ([4]byte, error) {
	a := ap.Addr().Unmap()
	if !a.Is4() {
		return [4]byte{}, fmt.Errorf("%s: not an IPv4 address and port", ap)
	}
	return a.As4(), nil
}

// be32 and be16 give the value whose in-memory bytes are b (network byte
// order), as the generated structs hold packet fields.
func be32(b [4]byte) uint32 { return binary.NativeEndian.Uint32(b[:]) }

func be16(port uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, port))
}

func fromBE32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte(binary.NativeEndian.AppendUint32(nil, v)))
}

func fromBE16(v uint16) uint16 {
	return binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, v))
}

func makeKey(local netip.AddrPort) (fastpathFpKey, error) {
	a, err := ipv4(local)
	if err != nil {
		return fastpathFpKey{}, err
	}
	if local.Port() == 0 {
		return fastpathFpKey{}, fmt.Errorf("%s: port 0", local)
	}
	return fastpathFpKey{Addr: be32(a), Port: be16(local.Port())}, nil
}

func keyAddrPort(k fastpathFpKey) netip.AddrPort {
	return netip.AddrPortFrom(fromBE32(k.Addr), fromBE16(k.Port))
}

func makeEntry(e Entry) (fastpathFpEntry, error) {
	var v fastpathFpEntry
	src, err := ipv4(e.Source)
	if err != nil {
		return v, fmt.Errorf("source %w", err)
	}
	dst, err := ipv4(e.Dest)
	if err != nil {
		return v, fmt.Errorf("destination %w", err)
	}
	if e.Source.Port() == 0 || e.Dest.Port() == 0 {
		return v, errors.New("source or destination port 0")
	}
	if netip.AddrFrom4(dst).IsUnspecified() {
		return v, errors.New("destination 0.0.0.0")
	}
	v.SrcAddr, v.SrcPort = be32(src), be16(e.Source.Port())
	v.DstAddr, v.DstPort = be32(dst), be16(e.Dest.Port())
	if e.Strict {
		exp, err := ipv4(e.Expect)
		if err != nil {
			return v, fmt.Errorf("expected source %w", err)
		}
		v.Flags |= flagStrict
		v.ExpectAddr, v.ExpectPort = be32(exp), be16(e.Expect.Port())
	}
	if e.PassRTCP {
		v.Flags |= flagPassRTCP
	}
	if e.IfIndex < 0 || e.IfIndex > 1<<31-1 {
		return v, fmt.Errorf("ifindex %d out of range", e.IfIndex)
	}
	v.Ifindex = uint32(e.IfIndex)
	if e.SetTOS {
		v.Flags |= flagSetTOS
		v.Tos = e.TOS
	}
	if e.SetTTL {
		if e.TTL == 0 {
			return v, errors.New("TTL 0")
		}
		v.Flags |= flagSetTTL
		v.Ttl = e.TTL
	}
	return v, nil
}

func entryFromMap(v fastpathFpEntry) Entry {
	e := Entry{
		Source:   netip.AddrPortFrom(fromBE32(v.SrcAddr), fromBE16(v.SrcPort)),
		Dest:     netip.AddrPortFrom(fromBE32(v.DstAddr), fromBE16(v.DstPort)),
		Strict:   v.Flags&flagStrict != 0,
		PassRTCP: v.Flags&flagPassRTCP != 0,
		IfIndex:  int(v.Ifindex),
		SetTOS:   v.Flags&flagSetTOS != 0,
		SetTTL:   v.Flags&flagSetTTL != 0,
	}
	if e.Strict {
		e.Expect = netip.AddrPortFrom(fromBE32(v.ExpectAddr), fromBE16(v.ExpectPort))
	}
	if e.SetTOS {
		e.TOS = v.Tos
	}
	if e.SetTTL {
		e.TTL = v.Ttl
	}
	return e
}

// String describes c briefly, for logs and test failures.
func (c Counters) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "packets=%d bytes=%d ssrc=%#x mismatch=%d passed=%d", c.Packets, c.Bytes, c.SSRC, c.SourceMismatch, c.Passed)
	if !c.LastPacket.IsZero() {
		fmt.Fprintf(&b, " last=%s", c.LastPacket.Format(time.RFC3339Nano))
	}
	return b.String()
}
