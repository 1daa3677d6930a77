package fastpath

// The map formats: keys and entries of both families as the program reads
// them (network byte order in native-endian words), and back.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

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

// ipv6 returns ap's address as 16 bytes, refusing IPv4 and IPv4-mapped
// addresses (the IPv4 maps serve those) and addresses with a zone.
func ipv6(ap netip.AddrPort) ([16]byte, error) {
	a := ap.Addr()
	if !a.Is6() || a.Is4In6() {
		return [16]byte{}, fmt.Errorf("%s: not an IPv6 address and port", ap)
	}
	if a.Zone() != "" {
		return [16]byte{}, fmt.Errorf("%s: an IPv6 address with a zone", ap)
	}
	return a.As16(), nil
}

// be128 is be32 for the four words of an IPv6 address.
func be128(b [16]byte) [4]uint32 {
	var w [4]uint32
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return w
}

func fromBE128(w [4]uint32) netip.Addr {
	var b [16]byte
	for i, v := range w {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	return netip.AddrFrom16(b)
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

func makeKey6(local netip.AddrPort) (fastpathFpKey6, error) {
	a, err := ipv6(local)
	if err != nil {
		return fastpathFpKey6{}, err
	}
	if local.Port() == 0 {
		return fastpathFpKey6{}, fmt.Errorf("%s: port 0", local)
	}
	return fastpathFpKey6{Addr: be128(a), Port: be16(local.Port())}, nil
}

func keyAddrPort6(k fastpathFpKey6) netip.AddrPort {
	return netip.AddrPortFrom(fromBE128(k.Addr), fromBE16(k.Port))
}

// anyKey is a stream's key in the maps of its local socket's family.
type anyKey struct {
	v6 bool
	k4 fastpathFpKey
	k6 fastpathFpKey6
}

// makeAnyKey returns local's key: IPv4 (IPv4-mapped addresses included)
// or IPv6.
func makeAnyKey(local netip.AddrPort) (*anyKey, error) {
	var k anyKey
	var err error
	if local.Addr().Unmap().Is4() {
		k.k4, err = makeKey(local)
	} else {
		k.v6 = true
		k.k6, err = makeKey6(local)
	}
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// ptr returns a pointer to the key, for the maps.
func (k *anyKey) ptr() any {
	if k.v6 {
		return &k.k6
	}
	return &k.k4
}

// entryFields are the fields of fp_entry and fp_entry6 other than the
// addresses, in the maps' representation.
type entryFields struct {
	srcPort, dstPort, expectPort uint16
	flags                        uint16
	ifindex                      uint32
	tos, ttl                     uint8
	maxPPS                       uint32
}

// makeFields checks e's family-independent fields and converts them.
func makeFields(e Entry) (entryFields, error) {
	var x entryFields
	if e.Source.Port() == 0 || e.Dest.Port() == 0 {
		return x, errors.New("source or destination port 0")
	}
	x.srcPort, x.dstPort = be16(e.Source.Port()), be16(e.Dest.Port())
	if e.Strict || e.Expect.IsValid() {
		x.expectPort = be16(e.Expect.Port())
	}
	if e.Strict {
		x.flags |= flagStrict
	}
	if e.PassRTCP {
		x.flags |= flagPassRTCP
	}
	if e.IfIndex < 0 || e.IfIndex > 1<<31-1 {
		return x, fmt.Errorf("ifindex %d out of range", e.IfIndex)
	}
	x.ifindex = uint32(e.IfIndex)
	x.maxPPS = e.MaxPPS
	if e.SetTOS {
		x.flags |= flagSetTOS
		x.tos = e.TOS
	}
	if e.SetTTL {
		if e.TTL == 0 {
			return x, errors.New("TTL 0")
		}
		x.flags |= flagSetTTL
		x.ttl = e.TTL
	}
	return x, nil
}

// entry returns the Entry of x, with its addresses (expect is
// meaningful only with expectSet).
func (x entryFields) entry(src, dst, expect netip.Addr, expectSet bool) Entry {
	e := Entry{
		Source:   netip.AddrPortFrom(src, fromBE16(x.srcPort)),
		Dest:     netip.AddrPortFrom(dst, fromBE16(x.dstPort)),
		Strict:   x.flags&flagStrict != 0,
		PassRTCP: x.flags&flagPassRTCP != 0,
		IfIndex:  int(x.ifindex),
		MaxPPS:   x.maxPPS,
		SetTOS:   x.flags&flagSetTOS != 0,
		SetTTL:   x.flags&flagSetTTL != 0,
	}
	// An unset expected source is stored as zeros (not possible with
	// Strict, which requires one).
	if e.Strict || expectSet || x.expectPort != 0 {
		e.Expect = netip.AddrPortFrom(expect, fromBE16(x.expectPort))
	}
	if e.SetTOS {
		e.TOS = x.tos
	}
	if e.SetTTL {
		e.TTL = x.ttl
	}
	return e
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
	x, err := makeFields(e)
	if err != nil {
		return v, err
	}
	if netip.AddrFrom4(dst).IsUnspecified() {
		return v, errors.New("destination 0.0.0.0")
	}
	v.SrcAddr, v.SrcPort = be32(src), x.srcPort
	v.DstAddr, v.DstPort = be32(dst), x.dstPort
	if e.Strict || e.Expect.IsValid() {
		exp, err := ipv4(e.Expect)
		if err != nil {
			return v, fmt.Errorf("expected source %w", err)
		}
		v.ExpectAddr, v.ExpectPort = be32(exp), x.expectPort
	}
	v.Flags, v.Ifindex, v.MaxPps, v.Tos, v.Ttl = x.flags, x.ifindex, x.maxPPS, x.tos, x.ttl
	return v, nil
}

func entryFromMap(v fastpathFpEntry) Entry {
	x := entryFields{srcPort: v.SrcPort, dstPort: v.DstPort, expectPort: v.ExpectPort,
		flags: v.Flags, ifindex: v.Ifindex, tos: v.Tos, ttl: v.Ttl, maxPPS: v.MaxPps}
	return x.entry(fromBE32(v.SrcAddr), fromBE32(v.DstAddr), fromBE32(v.ExpectAddr), v.ExpectAddr != 0)
}

func makeEntry6(e Entry) (fastpathFpEntry6, error) {
	var v fastpathFpEntry6
	src, err := ipv6(e.Source)
	if err != nil {
		return v, fmt.Errorf("source %w", err)
	}
	dst, err := ipv6(e.Dest)
	if err != nil {
		return v, fmt.Errorf("destination %w", err)
	}
	x, err := makeFields(e)
	if err != nil {
		return v, err
	}
	if netip.AddrFrom16(dst).IsUnspecified() {
		return v, errors.New("destination [::] (unspecified)")
	}
	v.SrcAddr, v.SrcPort = be128(src), x.srcPort
	v.DstAddr, v.DstPort = be128(dst), x.dstPort
	if e.Strict || e.Expect.IsValid() {
		exp, err := ipv6(e.Expect)
		if err != nil {
			return v, fmt.Errorf("expected source %w", err)
		}
		v.ExpectAddr, v.ExpectPort = be128(exp), x.expectPort
	}
	v.Flags, v.Ifindex, v.MaxPps, v.Tos, v.Ttl = x.flags, x.ifindex, x.maxPPS, x.tos, x.ttl
	return v, nil
}

func entryFromMap6(v fastpathFpEntry6) Entry {
	x := entryFields{srcPort: v.SrcPort, dstPort: v.DstPort, expectPort: v.ExpectPort,
		flags: v.Flags, ifindex: v.Ifindex, tos: v.Tos, ttl: v.Ttl, maxPPS: v.MaxPps}
	return x.entry(fromBE128(v.SrcAddr), fromBE128(v.DstAddr), fromBE128(v.ExpectAddr), v.ExpectAddr != [4]uint32{})
}
