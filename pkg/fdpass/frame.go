package fdpass

import (
	"encoding/binary"
	"fmt"
)

// Limits of one message.
const (
	// MaxFDs is the most descriptors one message can carry: the kernel's
	// SCM_MAX_FD.
	MaxFDs = 253
	// MaxMsgSize is the most metadata bytes in one message (for
	// [Conn.Send], including the frame's own header bytes).
	MaxMsgSize = 64 << 10
	// MaxItemMeta is the most metadata bytes of one [Item].
	MaxItemMeta = MaxMsgSize - frameHeaderLen - itemHeaderLen
)

// NoFD in [Item.FD] marks an item that carries only metadata.
const NoFD = -1

// Item is one unit of [Conn.Send] and [Conn.Recv]: caller-defined metadata
// (may be empty) and one descriptor, or [NoFD].
type Item struct {
	Meta []byte
	FD   int
}

// The item frame, all integers big-endian:
//
//	header: magic 0xFD, version 1, item count uint16, descriptor count uint16
//	then per item: flags uint8 (bit 0: has a descriptor), meta length uint16, meta
//
// Descriptors are assigned, in order, to the items whose flag says they
// have one. The frame must end exactly after the last item.
const (
	frameMagic     = 0xFD
	frameVersion   = 1
	frameHeaderLen = 6
	itemHeaderLen  = 3
	itemHasFD      = 0x01
)

// appendFrame encodes items, which the caller has checked against the
// limits, and returns the extended buffer and the descriptors in order.
func appendFrame(dst []byte, fds []int, items []Item) ([]byte, []int) {
	start := len(fds)
	for _, it := range items {
		if it.FD != NoFD {
			fds = append(fds, it.FD)
		}
	}
	dst = append(dst, frameMagic, frameVersion)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(items)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(fds)-start))
	for _, it := range items {
		var flags byte
		if it.FD != NoFD {
			flags = itemHasFD
		}
		dst = append(dst, flags)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(it.Meta)))
		dst = append(dst, it.Meta...)
	}
	return dst, fds
}

// parseFrame decodes an item frame. Items that have a descriptor get FD =
// their index among such items (0, 1, ...); the others get NoFD. Meta
// slices alias b. It returns the number of descriptors the frame needs.
func parseFrame(b []byte) ([]Item, int, error) {
	if len(b) < frameHeaderLen {
		return nil, 0, fmt.Errorf("%w: %d bytes, shorter than the header", ErrBadFrame, len(b))
	}
	if b[0] != frameMagic || b[1] != frameVersion {
		return nil, 0, fmt.Errorf("%w: magic/version %#02x %d, want %#02x %d", ErrBadFrame, b[0], b[1], frameMagic, frameVersion)
	}
	count := int(binary.BigEndian.Uint16(b[2:]))
	declared := int(binary.BigEndian.Uint16(b[4:]))
	if count == 0 {
		return nil, 0, fmt.Errorf("%w: no items", ErrBadFrame)
	}
	if declared > MaxFDs || declared > count {
		return nil, 0, fmt.Errorf("%w: %d descriptors declared for %d items", ErrBadFrame, declared, count)
	}
	if room := (len(b) - frameHeaderLen) / itemHeaderLen; count > room {
		return nil, 0, fmt.Errorf("%w: %d items cannot fit in %d bytes", ErrBadFrame, count, len(b))
	}
	items := make([]Item, 0, count)
	nfd := 0
	p := b[frameHeaderLen:]
	for i := range count {
		if len(p) < itemHeaderLen {
			return nil, 0, fmt.Errorf("%w: item %d: header truncated", ErrBadFrame, i)
		}
		flags, n := p[0], int(binary.BigEndian.Uint16(p[1:]))
		if flags&^itemHasFD != 0 {
			return nil, 0, fmt.Errorf("%w: item %d: unknown flags %#02x", ErrBadFrame, i, flags)
		}
		p = p[itemHeaderLen:]
		if len(p) < n {
			return nil, 0, fmt.Errorf("%w: item %d: %d metadata bytes declared, %d left", ErrBadFrame, i, n, len(p))
		}
		it := Item{Meta: p[:n:n], FD: NoFD}
		if flags&itemHasFD != 0 {
			it.FD = nfd
			nfd++
		}
		items = append(items, it)
		p = p[n:]
	}
	if len(p) != 0 {
		return nil, 0, fmt.Errorf("%w: %d bytes after the last item", ErrBadFrame, len(p))
	}
	if nfd != declared {
		return nil, 0, fmt.Errorf("%w: header declares %d descriptors, items have %d", ErrBadFrame, declared, nfd)
	}
	return items, nfd, nil
}
