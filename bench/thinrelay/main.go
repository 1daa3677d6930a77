// Command thinrelay is the floor the benchmarks hold rtpkit's media path
// against: the least a relay driven over ng can do. It answers offer,
// answer, delete and ping over UDP ng, gives each party of a call one
// socket of its own (no RTCP, no latching: media goes to the endpoint the
// SDP names), and forwards in one epoll loop on a locked thread with
// recvmmsg and sendmmsg, as rtpkit's loops do, without anything else:
// no bus, no records, no timers, no counters, no learning, no checks.
//
//	thinrelay -listen 127.0.0.1:2299 [-addr 127.0.0.1]
//
// For bench/compare.sh; not a proxy to run.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

const batch = 64

func main() {
	listen := flag.String("listen", "127.0.0.1:2299", "ng `ADDR:PORT` (UDP)")
	addr := flag.String("addr", "127.0.0.1", "IPv4 `address` of the media sockets")
	flag.Parse()
	a, err := netip.ParseAddr(*addr)
	if err != nil || !a.Is4() {
		log.Fatalf("thinrelay: -addr %q: want an IPv4 address", *addr)
	}
	r, err := newRelay(a)
	if err != nil {
		log.Fatal(err)
	}
	go r.loop()
	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "thinrelay: ng on %s, media on %s\n", pc.LocalAddr(), a)
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		cookie, body, ok := bytes.Cut(buf[:n], []byte(" "))
		if !ok {
			continue
		}
		req, err := bencode.Decode(body, bencode.Limits{})
		if err != nil {
			continue
		}
		reply := r.handle(req)
		_, _ = pc.WriteTo(append(append(cookie, ' '), bencode.Encode(reply)...), from)
	}
}

// leg is one party's socket: what arrives on it goes out of peer's socket
// to peer's endpoint.
type leg struct {
	fd   int
	port int
	peer *leg
	dest unix.RawSockaddrInet4
	has  bool // dest is set
}

type call struct{ a, b *leg }

type relay struct {
	addr  [4]byte
	epfd  int
	mu    sync.Mutex
	calls map[string]*call
	// loopL maps descriptors to legs for the loop. A leg's endpoint is
	// written by the ng side while the loop may read it (unsynchronised:
	// a benchmark tool's shortcut, harmless for what it measures).
	loopL sync.Map
}

func newRelay(a netip.Addr) (*relay, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &relay{addr: a.As4(), epfd: epfd, calls: map[string]*call{}}, nil
}

var (
	cLine = regexp.MustCompile(`(?m)^c=IN IP4 (\S+)`)
	mLine = regexp.MustCompile(`(?m)^m=audio (\d+) `)
)

func (r *relay) handle(req bencode.Value) bencode.Value {
	cmd, _ := req.GetString("command")
	id, _ := req.GetString("call-id")
	switch cmd {
	case "ping":
		return bencode.NewDict(bencode.Pair{Key: "result", Value: bencode.Str("pong")})
	case "delete":
		r.mu.Lock()
		c := r.calls[id]
		delete(r.calls, id)
		r.mu.Unlock()
		if c != nil {
			r.closeLeg(c.a)
			r.closeLeg(c.b)
		}
		return ok(nil)
	case "offer", "answer":
		sdp, _ := req.GetString("sdp")
		ep, err := endpoint(sdp)
		if err != nil {
			return fail(err.Error())
		}
		r.mu.Lock()
		c := r.calls[id]
		if c == nil && cmd == "offer" {
			c = &call{}
			if c.a, err = r.openLeg(); err == nil {
				if c.b, err = r.openLeg(); err != nil {
					r.closeLeg(c.a)
				}
			}
			if err != nil {
				r.mu.Unlock()
				return fail(err.Error())
			}
			c.a.peer, c.b.peer = c.b, c.a
			r.calls[id] = c
		}
		r.mu.Unlock()
		if c == nil {
			return fail("Unknown call-id")
		}
		// The offerer is party A (it sends to a, which the answer
		// advertises); the answerer B sends to b, which the offer
		// advertises.
		self, adv := c.a, c.b
		if cmd == "answer" {
			self, adv = c.b, c.a
		}
		self.dest = sockaddr(ep)
		self.has = true
		out := cLine.ReplaceAllString(sdp, "c=IN IP4 "+netip.AddrFrom4(r.addr).String())
		out = mLine.ReplaceAllString(out, "m=audio "+strconv.Itoa(adv.port)+" ")
		v := bencode.Str(out)
		return ok(&v)
	}
	return fail("Unrecognized command")
}

func ok(sdp *bencode.Value) bencode.Value {
	d := bencode.NewDict(bencode.Pair{Key: "result", Value: bencode.Str("ok")})
	if sdp != nil {
		d.Set("sdp", *sdp)
	}
	return d
}

func fail(why string) bencode.Value {
	return bencode.NewDict(bencode.Pair{Key: "result", Value: bencode.Str("error")},
		bencode.Pair{Key: "error-reason", Value: bencode.Str(why)})
}

func endpoint(sdp string) (netip.AddrPort, error) {
	c, m := cLine.FindStringSubmatch(sdp), mLine.FindStringSubmatch(sdp)
	if c == nil || m == nil {
		return netip.AddrPort{}, fmt.Errorf("no c= or m=audio line")
	}
	a, err := netip.ParseAddr(c[1])
	if err != nil || !a.Is4() {
		return netip.AddrPort{}, fmt.Errorf("c= %q: not IPv4", c[1])
	}
	p, err := strconv.ParseUint(m[1], 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("m= port %q", m[1])
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

func sockaddr(ep netip.AddrPort) unix.RawSockaddrInet4 {
	var sa unix.RawSockaddrInet4
	sa.Family = unix.AF_INET
	sa.Addr = ep.Addr().As4()
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(ep.Port()>>8), byte(ep.Port())
	return sa
}

func (r *relay) openLeg() (*leg, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: r.addr}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	l := &leg{fd: fd, port: sa.(*unix.SockaddrInet4).Port}
	r.loopL.Store(int32(fd), l)
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		r.loopL.Delete(int32(fd))
		unix.Close(fd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return l, nil
}

// closeLeg removes a leg. The loop may still be serving it: it looks the
// leg up by descriptor per event, and a reused descriptor maps to its new
// leg (a stray packet of the old call may go to the new one: a benchmark
// tool accepts that).
func (r *relay) closeLeg(l *leg) {
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, l.fd, nil)
	r.loopL.Delete(int32(l.fd))
	unix.Close(l.fd)
}

// loop forwards until the process ends.
func (r *relay) loop() {
	runtime.LockOSThread()
	events := make([]unix.EpollEvent, 128)
	buf := make([]byte, batch*2048)
	rh := make([]unix.Mmsghdr, batch)
	riov := make([]unix.Iovec, batch)
	sh := make([]unix.Mmsghdr, batch)
	siov := make([]unix.Iovec, batch)
	for i := range batch {
		riov[i].Base = &buf[i*2048]
		riov[i].SetLen(2048)
		rh[i].Hdr.Iov = &riov[i]
		rh[i].Hdr.SetIovlen(1)
		sh[i].Hdr.Iov = &siov[i]
		sh[i].Hdr.SetIovlen(1)
	}
	for {
		n, err := unix.EpollWait(r.epfd, events, -1)
		if err != nil {
			continue // EINTR
		}
		for i := range n {
			v, found := r.loopL.Load(events[i].Fd)
			if !found {
				continue
			}
			l := v.(*leg)
			got, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(l.fd), uintptr(unsafe.Pointer(&rh[0])), batch, unix.MSG_DONTWAIT, 0, 0)
			if errno != 0 || got == 0 {
				continue
			}
			p := l.peer
			if p == nil || !p.has {
				continue
			}
			for k := range int(got) {
				siov[k].Base = &buf[k*2048]
				siov[k].SetLen(int(rh[k].Len))
				sh[k].Hdr.Name = (*byte)(unsafe.Pointer(&p.dest))
				sh[k].Hdr.Namelen = unix.SizeofSockaddrInet4
			}
			_, _, _ = unix.Syscall6(unix.SYS_SENDMMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&sh[0])), got, 0, 0, 0)
		}
	}
}
