package mediabench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
)

// flood is one extra call whose A→B stream is sent far above a normal
// rate while the measured calls run: it shows whether a flooded stream
// disturbs the others, and how much of it the proxy passes.
type flood struct {
	a, b          *socket
	pps           int
	sent, arrived atomic.Uint64
	stop          chan struct{}
	wg            sync.WaitGroup
}

// newFlood sets up the flood call.
func newFlood(ctx context.Context, ng string, id string, pps int) (*flood, error) {
	a, err := newSocket()
	if err != nil {
		return nil, err
	}
	b, err := newSocket()
	if err != nil {
		_ = unix.Close(a.fd)
		return nil, err
	}
	f := &flood{a: a, b: b, pps: pps, stop: make(chan struct{})}
	c, err := ngclient.Dial(ng)
	if err != nil {
		f.close()
		return nil, err
	}
	defer c.Close()
	forA, forB, err := setupCall(ctx, c, id, a.port, b.port)
	if err != nil {
		f.close()
		return nil, err
	}
	a.setDest(forA)
	b.setDest(forB)
	return f, nil
}

// start sends from A at f.pps (in bursts every millisecond) and counts
// what reaches B, until end.
func (f *flood) start() {
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		buf := make([]byte, rtppacket.HeaderLen+160)
		perMs := max(1, f.pps/1000)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			for range perMs {
				f.a.seq++
				h := rtppacket.RTP{Seq: f.a.seq, Timestamp: uint32(f.a.seq) * 160, SSRC: f.a.ssrc}
				_ = h.WriteHeader(buf) // cannot fail: buf is longer than a header
				if err := sendRaw(f.a, buf); err == nil {
					f.sent.Add(1)
				}
			}
		}
	}()
	go func() {
		defer f.wg.Done()
		buf := make([]byte, 2048)
		for {
			_, _, err := unix.Recvfrom(f.b.fd, buf, unix.MSG_DONTWAIT)
			if err == nil {
				f.arrived.Add(1)
				continue
			}
			select {
			case <-f.stop:
				return
			case <-time.After(500 * time.Microsecond):
			}
		}
	}()
}

func sendRaw(s *socket, buf []byte) error {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&s.dst)), unix.SizeofSockaddrInet4)
	if e != 0 {
		return e
	}
	return nil
}

// end stops the flood and waits for its goroutines.
func (f *flood) end() {
	close(f.stop)
	f.wg.Wait()
}

func (f *flood) close() {
	_ = unix.Close(f.a.fd)
	_ = unix.Close(f.b.fd)
}

// ports are the flood call's local ports (the load generator's).
func (f *flood) ports() []int { return []int{f.a.port, f.b.port} }
