package fwd

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// refRxqOverflow is rxqOverflow written the slow, obvious way (byte
// slices and encoding/binary): the fuzz target compares the two.
func refRxqOverflow(b []byte) (uint32, bool) {
	hdr := unix.SizeofCmsghdr
	for off := 0; len(b)-off >= hdr; {
		n := int(binary.NativeEndian.Uint64(b[off:])) // Cmsghdr.Len is a uint64 on linux/amd64 and arm64
		level := int32(binary.NativeEndian.Uint32(b[off+8:]))
		typ := int32(binary.NativeEndian.Uint32(b[off+12:]))
		if n < hdr || n > len(b)-off {
			return 0, false
		}
		if level == unix.SOL_SOCKET && typ == unix.SO_RXQ_OVFL && n >= unix.CmsgLen(4) {
			return binary.NativeEndian.Uint32(b[off+unix.CmsgLen(0):]), true
		}
		sp := unix.CmsgSpace(n - unix.CmsgLen(0))
		if sp >= len(b)-off {
			break
		}
		off += sp
	}
	return 0, false
}

// aligned copies b into 8-byte aligned memory, as the kernel's control
// buffer is (rxqOverflow lays a Cmsghdr over it).
func aligned(b []byte) []byte {
	words := make([]uint64, (len(b)+7)/8)
	out := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), len(words)*8)[:len(b)]
	copy(out, b)
	return out
}

// cmsg builds one control message.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	binary.NativeEndian.PutUint64(b, uint64(unix.CmsgLen(len(data))))
	binary.NativeEndian.PutUint32(b[8:], uint32(level))
	binary.NativeEndian.PutUint32(b[12:], uint32(typ))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// FuzzRxqOverflow: the walk over the control messages the kernel writes
// next to each datagram never reads outside the buffer and finds what the
// reference walk finds, whatever the bytes.
func FuzzRxqOverflow(f *testing.F) {
	if unsafe.Sizeof(unix.Cmsghdr{}.Len) != 8 {
		f.Skip("the reference walk assumes a 64-bit Cmsghdr.Len")
	}
	drops := binary.NativeEndian.AppendUint32(nil, 7)
	f.Add(cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, drops))
	f.Add(append(cmsg(unix.SOL_IP, unix.IP_TOS, []byte{0xb8}), cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, drops)...))
	f.Add(cmsg(unix.SOL_SOCKET, unix.SO_RXQ_OVFL, nil))
	f.Add([]byte{})
	f.Add(make([]byte, 15))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = aligned(b)
		got, gotOK := rxqOverflow(b)
		want, wantOK := refRxqOverflow(b)
		if got != want || gotOK != wantOK {
			t.Fatalf("rxqOverflow = %d %v, reference %d %v", got, gotOK, want, wantOK)
		}
	})
}

// FuzzPacketHeader: what the loop reads of a packet it forwards (is it
// RTCP; an RTP packet's SSRC) never panics on any bytes, and a source
// address the kernel wrote in any layout parses to a valid address or to
// none.
func FuzzPacketHeader(f *testing.F) {
	f.Add([]byte{0x80, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78}, uint16(unix.AF_INET), uint32(16))
	f.Add([]byte{0x81, 201, 0, 7}, uint16(unix.AF_INET6), uint32(28))
	f.Add([]byte{}, uint16(0), uint32(0))
	f.Fuzz(func(t *testing.T, pkt []byte, family uint16, namelen uint32) {
		rtcp := isRTCP(pkt)
		if rtcp && (len(pkt) < 2 || pkt[1] < 194 || pkt[1] > 223) {
			t.Fatalf("isRTCP(%x) = true", pkt)
		}
		var raw unix.RawSockaddrInet6
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&raw)), unsafe.Sizeof(raw)), pkt)
		raw.Family = family
		ap := parseSockaddr(&raw, namelen)
		if ap.IsValid() && family != unix.AF_INET && family != unix.AF_INET6 {
			t.Fatalf("family %d parsed to %s", family, ap)
		}
		if ap.IsValid() {
			var sa sockaddr
			fam := unix.AF_INET6
			if ap.Addr().Is4() {
				fam = unix.AF_INET
			}
			if !sa.set(fam, ap) || parseSockaddr(&sa.raw, sa.len) != ap {
				t.Fatalf("%s does not round-trip through a %d sockaddr", ap, fam)
			}
		}
	})
}
