package rtpctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"golang.org/x/sys/unix"
)

const benchSetupSummary = `Measures call setup over ng: each client runs offer, answer and delete
cycles back to back against the ng address for the given time, and the tool
reports cycles per second and p50/p99 latency per request. Works against any
ng server (rtpkit or rtpengine).`

// SetupResult is the outcome of a setup-rate run.
type SetupResult struct {
	Target     string             `json:"target"`
	Clients    int                `json:"clients"`
	Seconds    float64            `json:"seconds"`
	Cycles     int                `json:"cycles"`
	Errors     int                `json:"errors"`
	CyclesPerS float64            `json:"cycles_per_second"`
	Latency    map[string]Latency `json:"latency_us"`
	FirstError string             `json:"first_error,omitempty"`
}

// Latency is a request's latency distribution in microseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func cmdBench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "media" {
		return cmdBenchMedia(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "setup" {
		fmt.Fprintln(stderr, "rtpctl bench: want a load: setup (ng call setup) or media (RTP through the proxy)")
		return ExitUsage
	}
	fs := cli.NewFlagSet("rtpctl bench setup")
	ng := fs.String("ng", "127.0.0.1:2223", "ng `ADDR:PORT` to load")
	clients := fs.Int("clients", 1, "concurrent `clients`, each with its own socket")
	dur := fs.Duration("duration", 5*time.Second, "how long to run")
	asJSON := fs.Bool("json", false, "print JSON")
	label := fs.String("label", "", "name of the target in the output")
	synopsis := "rtpctl bench setup [options]"
	if err := cli.Parse(fs, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cli.PrintUsage(stdout, fs, synopsis, benchSetupSummary)
			return ExitOK
		}
		fmt.Fprintf(stderr, "rtpctl bench setup: %v\n", err)
		cli.PrintUsage(stderr, fs, synopsis, benchSetupSummary)
		return ExitUsage
	}
	if *clients < 1 || *dur <= 0 {
		fmt.Fprintln(stderr, "rtpctl bench setup: --clients must be >= 1 and --duration > 0")
		return ExitUsage
	}
	res, err := BenchSetup(context.Background(), *ng, *clients, *dur)
	if err != nil {
		fmt.Fprintf(stderr, "rtpctl bench setup: %v\n", err)
		return ExitUnreachable
	}
	res.Target = *label
	if res.Target == "" {
		res.Target = *ng
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		fmt.Fprintf(stdout, "%-20s clients %-3d cycles/s %8.0f  errors %-4d", res.Target, res.Clients, res.CyclesPerS, res.Errors)
		for _, k := range []string{"offer", "answer", "delete"} {
			l := res.Latency[k]
			fmt.Fprintf(stdout, "  %s p50/p99 %.0f/%.0f µs", k, l.P50, l.P99)
		}
		fmt.Fprintln(stdout)
	}
	if res.Cycles == 0 {
		return ExitFailed
	}
	return ExitOK
}

const benchOffer = "v=0\r\no=- 1545997027 1 IN IP4 198.51.100.1\r\ns=tester\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 2000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=ptime:20\r\n"
const benchAnswer = "v=0\r\no=- 1545997028 1 IN IP4 198.51.100.2\r\ns=tester\r\nc=IN IP4 198.51.100.2\r\nt=0 0\r\nm=audio 3000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=ptime:20\r\n"

// BenchSetup runs offer/answer/delete cycles from `clients` clients for d.
func BenchSetup(ctx context.Context, ng string, clients int, d time.Duration) (SetupResult, error) {
	// Check that something answers before loading it.
	probe, err := ngclient.Dial(ng)
	if err != nil {
		return SetupResult{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = probe.Do(pctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("ping")}))
	cancel()
	_ = probe.Close()
	if err != nil {
		return SetupResult{}, fmt.Errorf("no ng server at %s: %w", ng, err)
	}
	type sample struct{ offer, answer, del []time.Duration }
	var mu sync.Mutex
	var all sample
	cycles, errs := 0, 0
	firstErr := ""
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := dialSetupClient(ng, stamp, i, clients <= runtime.GOMAXPROCS(0))
			if err != nil {
				mu.Lock()
				if firstErr == "" {
					firstErr = err.Error()
				}
				mu.Unlock()
				return
			}
			defer c.close()
			var s sample
			n, e := 0, 0
			fe := ""
			for time.Now().Before(deadline) && ctx.Err() == nil {
				call := c.prefix + strconv.Itoa(n)
				steps := []struct {
					dst *[]time.Duration
					req bencode.Value
				}{
					{&s.offer, ngDict("offer", call, "ft", "", benchOffer)},
					{&s.answer, ngDict("answer", call, "ft", "tt", benchAnswer)},
					{&s.del, ngDict("delete", call, "ft", "", "")},
				}
				ok := true
				for _, st := range steps {
					t0 := time.Now()
					raw, err := c.do(bencode.Encode(st.req), t0.Add(5*time.Second))
					el := time.Since(t0)
					var r bencode.Value
					if err == nil {
						r, err = bencode.Decode(raw, bencode.Limits{})
					}
					res, why := ngclient.Result(r)
					if err != nil || (res != "ok" && res != "pong") {
						ok = false
						if fe == "" {
							fe = fmt.Sprintf("%v %s %s", err, res, why)
						}
						break
					}
					*st.dst = append(*st.dst, el)
				}
				if ok {
					n++
				} else {
					e++
				}
			}
			mu.Lock()
			all.offer = append(all.offer, s.offer...)
			all.answer = append(all.answer, s.answer...)
			all.del = append(all.del, s.del...)
			cycles += n
			errs += e
			if firstErr == "" {
				firstErr = fe
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	return SetupResult{
		Clients: clients, Seconds: el, Cycles: cycles, Errors: errs, CyclesPerS: float64(cycles) / el, FirstError: firstErr,
		Latency: map[string]Latency{"offer": dist(all.offer), "answer": dist(all.answer), "delete": dist(all.del)},
	}, nil
}

// setupClient is one load client of BenchSetup: its own UDP socket and one
// request at a time, sent and answered on the client's own goroutine (no
// reader goroutine, no timer per request), so that the load tool takes as
// little as possible of the CPU of the machine it measures. With few
// clients the socket is blocking and used with plain system calls (no
// netpoller: half the CPU per request); with more clients than CPUs the
// threads blocked in them would fight for the CPUs, so the socket goes
// through the netpoller (conn set).
type setupClient struct {
	fd     int
	conn   *net.UDPConn
	readBy time.Time // conn's read deadline, extended only when half spent
	addr   string
	prefix string // of cookies and call ids
	seq    uint64
	msg    []byte
	buf    []byte
}

// setupRetransmit is how long a client waits for a reply before it sends
// the request again.
const setupRetransmit = time.Second

func dialSetupClient(ng, stamp string, i int, blocking bool) (*setupClient, error) {
	ua, err := net.ResolveUDPAddr("udp", ng)
	if err != nil {
		return nil, fmt.Errorf("ng server %s: %w", ng, err)
	}
	prefix := "bench-" + stamp + "-" + strconv.Itoa(i) + "-"
	if !blocking {
		conn, err := net.DialUDP("udp", nil, ua)
		if err != nil {
			return nil, fmt.Errorf("ng server %s: %w", ng, err)
		}
		return &setupClient{fd: -1, conn: conn, addr: ng, prefix: prefix, buf: make([]byte, 65536)}, nil
	}
	ap := ua.AddrPort()
	var sa unix.Sockaddr
	family := unix.AF_INET
	if a := ap.Addr().Unmap(); a.Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ng client socket: %w", err)
	}
	tv := unix.NsecToTimeval(setupRetransmit.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("ng client socket: %w", err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("ng server %s: %w", ng, err)
	}
	return &setupClient{fd: fd, addr: ng, prefix: prefix, buf: make([]byte, 65536)}, nil
}

func (c *setupClient) close() {
	if c.conn != nil {
		_ = c.conn.Close()
	} else {
		_ = unix.Close(c.fd)
	}
}

// send writes the request once.
func (c *setupClient) send() error {
	var err error
	if c.conn != nil {
		_, err = c.conn.Write(c.msg)
	} else {
		for {
			if _, err = unix.Write(c.fd, c.msg); err != unix.EINTR {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("ng send to %s: %w", c.addr, err)
	}
	return nil
}

// receive reads one datagram; timedOut says that none came within
// setupRetransmit (or so) of the send.
func (c *setupClient) receive(sent time.Time) (_ []byte, timedOut bool, _ error) {
	if c.conn != nil {
		if c.readBy.Sub(sent) < setupRetransmit/2 {
			c.readBy = sent.Add(setupRetransmit)
			if err := c.conn.SetReadDeadline(c.readBy); err != nil {
				return nil, false, fmt.Errorf("ng receive from %s: %w", c.addr, err)
			}
		}
		m, err := c.conn.Read(c.buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.readBy = time.Time{}
			return nil, true, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("ng receive from %s: %w", c.addr, err)
		}
		return c.buf[:m], false, nil
	}
	for {
		m, err := unix.Read(c.fd, c.buf)
		switch err {
		case nil:
			return c.buf[:m], false, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("ng receive from %s: %w", c.addr, err)
	}
}

// do sends one ng document and returns the reply's document (valid until
// the next call). It sends again after setupRetransmit without a reply,
// until deadline; replies to earlier requests are skipped.
func (c *setupClient) do(doc []byte, deadline time.Time) ([]byte, error) {
	c.seq++
	// Cookies are unique across clients and runs: a server caches replies
	// by cookie alone.
	c.msg = strconv.AppendUint(append(c.msg[:0], c.prefix...), c.seq, 36)
	n := len(c.msg)
	c.msg = append(append(c.msg, ' '), doc...)
	cookie := c.msg[:n]
	for {
		if err := c.send(); err != nil {
			return nil, err
		}
		sent := time.Now()
		for {
			r, timedOut, err := c.receive(sent)
			if err != nil {
				return nil, err
			}
			if timedOut {
				if !time.Now().Before(deadline) {
					return nil, fmt.Errorf("ng %s: no reply", c.addr)
				}
				break // send again
			}
			if len(r) > n && r[n] == ' ' && bytes.Equal(r[:n], cookie) {
				return r[n+1:], nil
			}
		}
	}
}

func ngDict(cmd, call, from, to, sdp string) bencode.Value {
	d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)},
		bencode.Pair{Key: "call-id", Value: bencode.Str(call)}, bencode.Pair{Key: "from-tag", Value: bencode.Str(from)})
	if to != "" {
		d.Set("to-tag", bencode.Str(to))
	}
	if sdp != "" {
		d.Set("sdp", bencode.Str(sdp))
		d.Set("flags", bencode.Strs("trust-address"))
		d.Set("replace", bencode.Strs("origin", "session-connection"))
		d.Set("ICE", bencode.Str("remove"))
	}
	if cmd == "delete" {
		d.Set("delete-delay", bencode.Int(0))
	}
	return d
}

func dist(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	return Latency{P50: us(ds[len(ds)/2]), P99: us(ds[min(len(ds)-1, len(ds)*99/100)]), Max: us(ds[len(ds)-1])}
}
