package fdpass

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is one end of a SOCK_SEQPACKET connection that carries descriptors.
// Sends are serialised with each other, and so are receives, so a Conn may
// be shared by one sending and one receiving goroutine (or more).
type Conn struct {
	uc   *net.UnixConn
	peer unix.Ucred

	wmu  sync.Mutex
	wbuf []byte
	wfds []int

	rmu  sync.Mutex
	rbuf []byte // MaxMsgSize bytes, allocated on first read
	oob  []byte // room for MaxFDs descriptors; tests may shrink it
}

// NewConn wraps a connected Unix socket of type SOCK_SEQPACKET ("unixpacket"),
// for example one end of a socketpair, and takes ownership of it. It fails
// (and leaves uc open) for other socket types.
func NewConn(uc *net.UnixConn) (*Conn, error) {
	var typ int
	var cred *unix.Ucred
	var serr error
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("fdpass: new conn: %w", err)
	}
	if err := rc.Control(func(fd uintptr) {
		typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		if serr == nil {
			cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		}
	}); err != nil {
		return nil, fmt.Errorf("fdpass: new conn: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("fdpass: new conn: %w", os.NewSyscallError("getsockopt", serr))
	}
	if typ != unix.SOCK_SEQPACKET {
		return nil, fmt.Errorf("fdpass: new conn: socket type %d is not SOCK_SEQPACKET", typ)
	}
	return &Conn{uc: uc, peer: *cred, oob: make([]byte, unix.CmsgSpace(MaxFDs*4))}, nil
}

// Peer returns the credentials (pid, uid, gid) of the process that created
// the other end, as recorded by the kernel at connect time (SO_PEERCRED).
func (c *Conn) Peer() unix.Ucred { return c.peer }

// Close closes the connection.
func (c *Conn) Close() error { return c.uc.Close() }

// SetDeadline sets the read and write deadlines, as [net.Conn.SetDeadline].
func (c *Conn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }

// SetReadDeadline sets the deadline for ReadMsg and Recv.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for WriteMsg and Send.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

// WriteMsg sends one message: meta (1 to [MaxMsgSize] bytes) together with
// up to [MaxFDs] descriptors. The descriptors stay open and owned by the
// caller (see the package documentation).
func (c *Conn) WriteMsg(meta []byte, fds []int) error {
	if err := checkMsg(meta, fds); err != nil {
		return fmt.Errorf("fdpass: write: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writeMsg(meta, fds); err != nil {
		return fmt.Errorf("fdpass: write: %w", err)
	}
	return nil
}

func checkMsg(meta []byte, fds []int) error {
	switch {
	case len(meta) == 0:
		return fmt.Errorf("%w: a message needs at least one byte of metadata", ErrEmpty)
	case len(meta) > MaxMsgSize:
		return fmt.Errorf("%w: %d bytes of metadata, limit %d", ErrTooLarge, len(meta), MaxMsgSize)
	case len(fds) > MaxFDs:
		return fmt.Errorf("%w: %d descriptors, limit %d per message", ErrTooLarge, len(fds), MaxFDs)
	}
	for _, fd := range fds {
		if fd < 0 {
			return fmt.Errorf("invalid descriptor %d", fd)
		}
	}
	return nil
}

// writeMsg sends one checked message; c.wmu is held.
func (c *Conn) writeMsg(meta []byte, fds []int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, oobn, err := c.uc.WriteMsgUnix(meta, oob, nil)
	if err != nil {
		return err
	}
	if n != len(meta) || oobn != len(oob) {
		return fmt.Errorf("short write: %d of %d bytes, %d of %d control bytes", n, len(meta), oobn, len(oob))
	}
	return nil
}

// ReadMsg receives one message: its metadata (a fresh slice) and the
// descriptors that came with it, now owned by the caller. When the message
// or its descriptors were truncated ([ErrTruncated]), the control data
// cannot be parsed, or the read fails (io.EOF when the peer has closed, test
// with errors.Is), it returns an error and closes every descriptor that
// arrived.
func (c *Conn) ReadMsg() ([]byte, []int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rbuf == nil {
		c.rbuf = make([]byte, MaxMsgSize)
	}
	n, oobn, flags, _, err := c.uc.ReadMsgUnix(c.rbuf, c.oob)
	if oobn > len(c.oob) {
		oobn = len(c.oob)
	}
	fds, perr := parseRights(c.oob[:oobn])
	switch {
	case err != nil:
		err = fmt.Errorf("fdpass: read: %w", err)
	case perr != nil:
		err = fmt.Errorf("fdpass: read: %w", perr)
	case flags&unix.MSG_CTRUNC != 0:
		err = fmt.Errorf("fdpass: read: %w: control data did not fit %d bytes; descriptors were lost (%d arrived and were closed)", ErrTruncated, len(c.oob), len(fds))
	case flags&unix.MSG_TRUNC != 0:
		err = fmt.Errorf("fdpass: read: %w: message longer than %d bytes (%d descriptors closed)", ErrTruncated, len(c.rbuf), len(fds))
	}
	if err != nil {
		closeFDs(fds)
		return nil, nil, err
	}
	return bytes.Clone(c.rbuf[:n]), fds, nil
}

// parseRights returns the descriptors of all SCM_RIGHTS control messages in
// oob. On error it still returns those found, so the caller can close them.
func parseRights(oob []byte) ([]int, error) {
	var fds []int
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return fds, fmt.Errorf("%w: %w", ErrBadControl, err)
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS {
			for len(data) >= 4 {
				fds = append(fds, int(int32(binary.NativeEndian.Uint32(data))))
				data = data[4:]
			}
			if len(data) != 0 {
				return fds, fmt.Errorf("%w: SCM_RIGHTS data is not a whole number of descriptors", ErrBadControl)
			}
		}
		oob = rest
	}
	return fds, nil
}

// Send sends items, packed into as few messages as the limits allow (at
// most [MaxFDs] descriptors and [MaxMsgSize] bytes each); each item's
// descriptor travels in the same message as its metadata. Items are
// received in order by [Conn.Recv] on the other end, one message per call.
// The descriptors stay open and owned by the caller.
//
// Send writes its messages without interleaving with other sends on c. On
// error, the messages before the failing one have been sent; the error says
// which items were not.
func (c *Conn) Send(items []Item) error {
	if len(items) == 0 {
		return fmt.Errorf("fdpass: send: %w: no items", ErrEmpty)
	}
	for i, it := range items {
		if len(it.Meta) > MaxItemMeta {
			return fmt.Errorf("fdpass: send: item %d: %w: %d bytes of metadata, limit %d", i, ErrTooLarge, len(it.Meta), MaxItemMeta)
		}
		if it.FD < 0 && it.FD != NoFD {
			return fmt.Errorf("fdpass: send: item %d: invalid descriptor %d", i, it.FD)
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for start := 0; start < len(items); {
		end, size, nfd := start, frameHeaderLen, 0
		for end < len(items) {
			it := items[end]
			hasFD := it.FD != NoFD
			if size+itemHeaderLen+len(it.Meta) > MaxMsgSize || (hasFD && nfd == MaxFDs) {
				break
			}
			size += itemHeaderLen + len(it.Meta)
			if hasFD {
				nfd++
			}
			end++
		}
		c.wbuf, c.wfds = appendFrame(c.wbuf[:0], c.wfds[:0], items[start:end])
		if err := c.writeMsg(c.wbuf, c.wfds); err != nil {
			return fmt.Errorf("fdpass: send: items %d to %d of %d not sent: %w", start, len(items)-1, len(items), err)
		}
		start = end
	}
	return nil
}

// Recv receives the items of one message sent by [Conn.Send]. Their
// descriptors are owned by the caller; their metadata does not alias any
// buffer of c. On any error (including a frame that does not account for
// exactly the descriptors that arrived, [ErrBadFrame]) every descriptor
// that arrived has been closed.
func (c *Conn) Recv() ([]Item, error) {
	meta, fds, err := c.ReadMsg()
	if err != nil {
		return nil, err
	}
	items, nfd, err := parseFrame(meta)
	if err == nil && nfd != len(fds) {
		err = fmt.Errorf("%w: frame has %d descriptors, %d arrived", ErrBadFrame, nfd, len(fds))
	}
	if err != nil {
		closeFDs(fds)
		return nil, fmt.Errorf("fdpass: recv: %w", err)
	}
	for i := range items {
		if items[i].FD != NoFD {
			items[i].FD = fds[items[i].FD]
		}
	}
	return items, nil
}

// CloseItems closes the descriptors of items (skipping [NoFD]), for a
// receiver that does not keep them.
func CloseItems(items []Item) {
	for _, it := range items {
		if it.FD >= 0 {
			unix.Close(it.FD)
		}
	}
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
