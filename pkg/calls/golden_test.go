package calls

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
)

var update = flag.Bool("update", false, "rewrite the expected outputs of the golden tests")

// fakePorts hands out pairs like a fresh portd would: 30000, 30002, ... per
// address, on 203.0.113.1 and 2001:db8:4321::1 ("default") and 198.51.100.100
// ("pub", IPv4 only, advertised as 192.0.2.100). Ports given back are
// handed out again first.
type fakePorts struct {
	next  map[netip.Addr]int
	spare []portdapi.Pair
	limit int
	taken int
	freed int
}

func newFakePorts() *fakePorts { return &fakePorts{next: map[netip.Addr]int{}, limit: 1 << 20} }

func (f *fakePorts) Take(_ context.Context, iface string, family int, single bool) (portdapi.Pair, error) {
	if f.taken >= f.limit {
		return portdapi.Pair{}, errors.New("no free port pair")
	}
	for i, p := range f.spare {
		fam := 4
		if p.RTP.Addr().Is6() {
			fam = 6
		}
		if fam == family && (iface == "" || p.Interface == iface) && single == !p.RTCP.IsValid() {
			f.spare = append(f.spare[:i], f.spare[i+1:]...)
			f.taken++
			return p, nil
		}
	}
	var addr netip.Addr
	var adv netip.Addr
	name := "default"
	switch {
	case iface == "pub" && family == 4:
		addr, adv, name = netip.MustParseAddr("198.51.100.100"), netip.MustParseAddr("192.0.2.100"), "pub"
	case iface == "pub":
		return portdapi.Pair{}, errors.New("no IPv6 on pub")
	case family == 6:
		addr = netip.MustParseAddr("2001:db8:4321::1")
	default:
		addr = netip.MustParseAddr("203.0.113.1")
	}
	port := f.next[addr]
	if port == 0 {
		port = 30000
	}
	f.next[addr] = port + 2
	f.taken++
	p := portdapi.Pair{Interface: name, RTP: netip.AddrPortFrom(addr, uint16(port)), Advertised: adv}
	if !single {
		p.RTCP = netip.AddrPortFrom(addr, uint16(port+1))
	}
	return p, nil
}

func (f *fakePorts) Put(p portdapi.Pair) { f.taken--; f.spare = append([]portdapi.Pair{p}, f.spare...) }

// Free counts pairs given back after use; they are not handed out again
// (a real portd quarantines them).
func (f *fakePorts) Free(pairs []portdapi.Pair) { f.freed += len(pairs); f.taken -= len(pairs) }

func newTestEngine(ports Ports) *Engine {
	now := time.Unix(1700000000, 0)
	return New(Config{Node: "test", Ports: ports, InstanceID: "0123456789ab", MaxSessions: -1,
		Interfaces: []Interface{{"default", []int{4, 6}}, {"pub", []int{4}}},
		Timers:     Timers{Timeout: 60, SilentTimeout: 3600, OfferTimeout: 3600, DeleteDelay: 30},
		Now:        func() time.Time { return now }, Log: slog.New(slog.DiscardHandler), Rand: &countingReader{},
		DTLSFingerprint: testFingerprint})
}

// testFingerprint is a fixed a=fingerprint of the node's certificate.
func testFingerprint(hash string) (string, error) {
	if hash == "sha-1" {
		return "sha-1 0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:01:12:23:34", nil
	}
	return hash + " 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF", nil
}

// countingReader is a deterministic source of "random" bytes (0, 1, 2,
// ...) for key material that goldens can pin.
type countingReader struct{ n byte }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

// step is one request of a golden case and the SDP it must produce.
type step struct {
	line   int
	header string
	req    Request
	sdp    string
	want   string
}

// parseRequestLine reads ">>> offer key=value ..." (lists comma-separated).
func parseRequestLine(s string) (Request, error) {
	f := strings.Fields(s)
	r := Request{Command: f[0], Flags: map[string]bool{}, Replace: map[string]bool{}, RTCPMux: map[string]bool{},
		Supports: map[string]bool{}, DeleteDelay: -1, Limit: -1, CallID: "golden-call"}
	for _, kv := range f[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return r, fmt.Errorf("bad option %q", kv)
		}
		list := strings.Split(v, ",")
		switch k {
		case "call-id":
			r.CallID = v
		case "from-tag":
			r.FromTag = v
		case "to-tag":
			r.ToTag = v
		case "via-branch":
			r.ViaBranch = v
		case "flags":
			for _, x := range list {
				r.Flags[x] = true
			}
		case "replace":
			for _, x := range list {
				r.Replace[x] = true
			}
		case "rtcp-mux":
			for _, x := range list {
				r.RTCPMux[x] = true
			}
		case "direction":
			r.Direction = list
		case "ICE":
			r.ICE = v
		case "ICE-lite":
			r.ICELite = v
		case "transport-protocol":
			r.TransportProtocol = v
		case "OSRTP":
			r.OSRTP = map[string]bool{}
			for _, x := range list {
				r.OSRTP[x] = true
			}
		case "SDES":
			r.SDES = map[string]bool{}
			for _, x := range list {
				r.SDES[x] = true
			}
		case "codec-strip":
			r.Codec.Strip = strings.Split(v, ",")
		case "codec-offer":
			r.Codec.Offer = strings.Split(v, ",")
		case "codec-except":
			r.Codec.Except = strings.Split(v, ",")
		case "address-family":
			r.AddressFamily = map[string]int{"IP4": 4, "IP6": 6}[v]
		case "media-address":
			r.MediaAddress = netip.MustParseAddr(v)
		case "received-from":
			r.ReceivedFrom = netip.MustParseAddr(v)
		case "delete-delay":
			r.DeleteDelay, _ = strconv.Atoi(v)
		default:
			return r, fmt.Errorf("unknown option %q", k)
		}
	}
	return r, nil
}

func readCase(t *testing.T, path string) []step {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []step
	var cur *step
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ">>> "):
			req, err := parseRequestLine(strings.TrimPrefix(line, ">>> "))
			if err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
			steps = append(steps, step{line: n, header: line, req: req})
			cur, section = &steps[len(steps)-1], "sdp"
		case line == "<<<":
			section = "want"
		case cur == nil || (section == "sdp" && strings.HasPrefix(line, "#") && cur.sdp == ""):
			// comments before the first request, or right after a header
		case section == "sdp":
			cur.sdp += line + "\n"
		case section == "want":
			cur.want += line + "\n"
		}
	}
	return steps
}

func writeCase(t *testing.T, path string, steps []step, got []string) {
	t.Helper()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the comment lines that precede the first request.
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(orig), "\n") {
		if strings.HasPrefix(l, ">>> ") {
			break
		}
		b.WriteString(l)
	}
	for i, s := range steps {
		b.WriteString(s.header + "\n" + s.sdp + "<<<\n" + got[i])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGolden runs every case in testdata/golden: a sequence of ng requests
// (offer, answer, delete) with the SDP each carries, and the SDP each must
// produce (or "ERROR: <reason>"). Input SDP is sent with CRLF line ends, as
// SIP carries it; outputs are compared with CRLF turned into LF, as
// rtpengine's own test harness does.
func TestGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/golden/*.txt")
	if len(cases) < 40 {
		t.Errorf("only %d golden cases; want at least 40", len(cases))
	}
	for _, path := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			steps := readCase(t, path)
			e := newTestEngine(newFakePorts())
			got := make([]string, len(steps))
			for i, s := range steps {
				req := s.req
				if s.sdp != "" {
					req.SDP = []byte(strings.ReplaceAll(s.sdp, "\n", "\r\n"))
				}
				var out string
				switch req.Command {
				case "offer", "answer":
					var b []byte
					var err error
					if req.Command == "offer" {
						b, err = e.Offer(context.Background(), &req)
					} else {
						b, err = e.Answer(context.Background(), &req)
					}
					if err != nil {
						out = "ERROR: " + Reason(err) + "\n"
					} else {
						out = strings.ReplaceAll(string(b), "\r\n", "\n")
						if !strings.HasSuffix(out, "\n") {
							out += "\n"
						}
					}
				case "delete":
					r, err := e.Delete(&req)
					switch {
					case err != nil:
						out = "ERROR: " + Reason(err) + "\n"
					case r.Warning != "":
						out = "WARNING: " + r.Warning + "\n"
					default:
						out = "OK\n"
					}
				default:
					t.Fatalf("%s:%d: unknown command %q", path, s.line, req.Command)
				}
				got[i] = out
				if !*update && out != s.want {
					t.Errorf("%s:%d: %s\n--- got ---\n%s--- want ---\n%s", path, s.line, s.header, out, s.want)
				}
			}
			if *update {
				writeCase(t, path, steps, got)
			}
		})
	}
}
