// Package fastpath is rtpkit's in-kernel fast path (issue 10): an eBPF TC
// program that forwards the packets of offloaded streams without waking
// rtp-fwd, on a stock kernel (no kernel module).
//
// The program (bpf/fastpath.c) runs at the ingress of the devices it is
// attached to. A plain IPv4/UDP packet (no IP options, not a fragment), or
// a plain IPv6/UDP one (UDP right after the fixed header: no extension
// header, hence no fragment; a non-zero UDP checksum), whose destination
// address and port are the local socket of an offloaded stream is
// rewritten — source to our egress socket, destination to the
// peer's endpoint, checksums fixed incrementally — counted per CPU and
// redirected out of the egress device with bpf_redirect_neigh; over an
// entry's rate cap ([Entry.MaxPPS]) it is dropped and counted instead. Every other
// packet, and every packet of a strict stream from another source,
// continues up the normal stack, where rtp-fwd's socket receives it as
// before.
//
// Use [Open] to load the program and its maps, [FastPath.Attach] on every
// device that carries a media address ([RouteIfIndex] finds the egress
// device of a peer), [FastPath.Put] and [FastPath.Delete] to offload
// streams and take them back, and [FastPath.Counters] for their counters.
// It needs CAP_BPF and CAP_NET_ADMIN (or root). The program is attached
// with TCX on kernels that have it (6.6+) and otherwise, as a fallback
// (Debian 12's 6.1), as a direct-action bpf filter on a clsact qdisc,
// through netlink; [Options.Attach] can force either, and
// [FastPath.Mode] says which one is used.
//
// Both families are served, each in its own maps, but an entry is of one
// family: the stream's local socket, our egress socket, the peer's
// endpoint and the expected source are all IPv4 or all IPv6 (no
// translation between them; a stream whose two legs differ in family
// stays in userspace). On IPv6 the traffic class stands for the TOS byte
// and the hop limit for the TTL.
//
// Limits: IPv6 packets with extension headers (fragments included) go to
// the stack; forwarded packets skip the proxy's netfilter (conntrack, OUTPUT rules),
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
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
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
	// maps are pinned (and, by [FastPath.Attach], the TCX links; clsact
	// filters are left in place instead), so that they and the forwarding
	// of offloaded streams outlive the process. If PinDir is not on a
	// bpffs, Open creates it and mounts one there (mode
	// 0700), for example under the node's runtime directory as
	// <runtime-dir>/bpf. Maps already pinned there are reused with their
	// contents (adoption after a restart) if their layout matches; a map
	// whose layout or size differs makes Open fail.
	PinDir string
	// MaxStreams is the capacity of the maps: how many streams can be
	// offloaded at once. 0 means DefaultMaxStreams.
	MaxStreams uint32
	// Attach is how [FastPath.Attach] hooks the program into a device:
	// AttachAuto (the zero value) picks TCX when the kernel has it and
	// clsact otherwise.
	Attach AttachMode
}

// FastPath is the loaded program and its maps. Its methods are safe for
// concurrent use.
type FastPath struct {
	objs   fastpathObjects
	pinDir string
	ncpu   int
	mode   AttachMode // AttachTCX or AttachClsact, never AttachAuto

	mu    sync.Mutex
	links map[int]*attachment // by ifindex
	// keep: Close leaves the clsact filters in place (PinDir set and
	// Unpin not called).
	keep   bool
	closed bool
}

// Entry says where the packets that arrive at an offloaded stream's local
// socket go. All its addresses are of the family of that local socket:
// all IPv4 (IPv4-mapped IPv6 addresses are accepted and unmapped) or all
// IPv6 (not link-local with a zone); the program translates no packet from
// one family to the other.
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
	// Expect is the expected (latched) source. The program checks it only
	// with Strict, which requires it; without Strict it is optional, but
	// when set (it must then be of the same family too) it is stored all the same and
	// returned by [FastPath.Streams], so that a restarted rtp-fwd can
	// re-adopt the latched source. 0.0.0.0:0 (IPv6: [::]:0) reads back as
	// unset.
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
	// DSCP) instead of the sender's; on IPv6 the traffic class.
	SetTOS bool
	// TOS is the TOS byte, with SetTOS.
	TOS uint8
	// SetTTL makes the packets leave with IP TTL TTL (what a packet sent
	// by rtp-fwd would carry) instead of the sender's; on IPv6 the hop
	// limit.
	SetTTL bool
	// TTL is the TTL, with SetTTL; it must not be 0.
	TTL uint8
	// MaxPPS caps the packets per second forwarded (0: no cap), checked
	// after the source: per 100 ms window at most MaxPPS/10 (at least 1)
	// packets; the rest are dropped in the kernel and counted in
	// Counters.FloodDrops, like rtp-fwd's userspace cap (handed to the
	// stack they would be forwarded again up to that cap).
	MaxPPS uint32
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
	// FloodDrops counts packets dropped over the entry's MaxPPS.
	FloodDrops uint64
}

// Open loads the program and its maps into the kernel (adopting the pinned
// maps under opts.PinDir, if any). It removes the memlock rlimit, which
// kernels before 5.11 charge BPF maps to. With opts.Attach AttachAuto, it
// probes whether the kernel has TCX ([FastPath.Mode] tells the outcome).
// Close releases them.
func Open(opts Options) (*FastPath, error) {
	switch opts.Attach {
	case AttachAuto, AttachTCX, AttachClsact:
	default:
		return nil, fmt.Errorf("fastpath: unknown attach mode %d", int(opts.Attach))
	}
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
	for _, name := range []string{fastpathMapFpStreams, fastpathMapFpStats, fastpathMapFpStreams6, fastpathMapFpStats6} {
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
	f := &FastPath{
		pinDir: opts.PinDir,
		ncpu:   ncpu,
		mode:   opts.Attach,
		links:  map[int]*attachment{},
		keep:   opts.PinDir != "",
	}
	if err := spec.LoadAndAssign(&f.objs, &copts); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("fastpath: load: %+v", verr)
		}
		return nil, fmt.Errorf("fastpath: load: %w", err)
	}
	if f.mode == AttachAuto {
		f.mode = AttachClsact
		if haveTCX(f.objs.FastpathIngress) {
			f.mode = AttachTCX
		}
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

// Put offloads the stream whose local socket is local (or updates where
// its packets go). Its counters start at zero when it is new and are kept
// when it is updated. The change applies to the next packet. The entry's
// addresses must be of local's family.
func (f *FastPath) Put(local netip.AddrPort, e Entry) error {
	k, err := makeAnyKey(local)
	if err != nil {
		return fmt.Errorf("fastpath: put: %w", err)
	}
	var v any
	if k.v6 {
		v6, err := makeEntry6(e)
		if err != nil {
			return fmt.Errorf("fastpath: put %s: %w", local, err)
		}
		v = &v6
	} else {
		v4, err := makeEntry(e)
		if err != nil {
			return fmt.Errorf("fastpath: put %s: %w", local, err)
		}
		v = &v4
	}
	streams, stats := f.maps(k.v6)
	// Counters first, so that the program finds them with the entry.
	zero := make([]fastpathFpCounters, f.ncpu)
	if err := stats.Update(k.ptr(), zero, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return fmt.Errorf("fastpath: put %s: counters: %w", local, err)
	}
	if err := streams.Update(k.ptr(), v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("fastpath: put %s: %w", local, err)
	}
	return nil
}

// Delete takes the stream whose local socket is local back to userspace:
// its next packets go to the normal stack. It returns the stream's final
// counters (for userspace to add to its own) and removes them. Deleting a
// stream that is not offloaded returns zero counters and no error.
func (f *FastPath) Delete(local netip.AddrPort) (Counters, error) {
	k, err := makeAnyKey(local)
	if err != nil {
		return Counters{}, fmt.Errorf("fastpath: delete: %w", err)
	}
	streams, stats := f.maps(k.v6)
	if err := streams.Delete(k.ptr()); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return Counters{}, fmt.Errorf("fastpath: delete %s: %w", local, err)
	}
	c, err := f.counters(stats, k.ptr())
	if err != nil {
		return Counters{}, fmt.Errorf("fastpath: delete %s: %w", local, err)
	}
	if err := stats.Delete(k.ptr()); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return Counters{}, fmt.Errorf("fastpath: delete %s: counters: %w", local, err)
	}
	return c, nil
}

// Counters returns the counters of the stream whose local socket is local,
// summed over the CPUs; zero counters if it has none (never offloaded, or
// deleted).
func (f *FastPath) Counters(local netip.AddrPort) (Counters, error) {
	k, err := makeAnyKey(local)
	if err != nil {
		return Counters{}, fmt.Errorf("fastpath: counters: %w", err)
	}
	_, stats := f.maps(k.v6)
	c, err := f.counters(stats, k.ptr())
	if err != nil {
		return Counters{}, fmt.Errorf("fastpath: counters of %s: %w", local, err)
	}
	return c, nil
}

// maps returns the stream and counter maps of a family.
func (f *FastPath) maps(v6 bool) (streams, stats *ebpf.Map) {
	if v6 {
		return f.objs.FpStreams6, f.objs.FpStats6
	}
	return f.objs.FpStreams, f.objs.FpStats
}

func (f *FastPath) counters(stats *ebpf.Map, k any) (Counters, error) {
	var per []fastpathFpCounters
	if err := stats.Lookup(k, &per); err != nil {
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
		c.FloodDrops += p.FloodDrops
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
	var (
		k6 fastpathFpKey6
		v6 fastpathFpEntry6
	)
	it = f.objs.FpStreams6.Iterate()
	for it.Next(&k6, &v6) {
		out[keyAddrPort6(k6)] = entryFromMap6(v6)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("fastpath: streams: %w", err)
	}
	return out, nil
}

// String describes c briefly, for logs and test failures.
func (c Counters) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "packets=%d bytes=%d ssrc=%#x mismatch=%d passed=%d flood_drops=%d", c.Packets, c.Bytes, c.SSRC, c.SourceMismatch, c.Passed, c.FloodDrops)
	if !c.LastPacket.IsZero() {
		fmt.Fprintf(&b, " last=%s", c.LastPacket.Format(time.RFC3339Nano))
	}
	return b.String()
}
