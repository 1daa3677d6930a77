package rtpctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/cli"
)

const benchSetupSummary = `Measures call setup over ng: each client runs offer, answer and delete
cycles back to back against the ng address for the given time, and the tool
reports cycles per second and p50/p99 latency per request. Works against any
ng server (rtpkit or rtpengine).`

// SetupResult is the outcome of a setup-rate run.
type SetupResult struct {
	Target     string             `json:"target"`
	Clients    int                `json:"clients"`
	HoldS      float64            `json:"hold_seconds"`
	Seconds    float64            `json:"seconds"`
	Cycles     int                `json:"cycles"`
	Errors     int                `json:"errors"`
	CyclesPerS float64            `json:"cycles_per_second"`
	Latency    map[string]Latency `json:"latency_us"`
	FirstError string             `json:"first_error,omitempty"`
}

// Latency is a request's latency distribution in microseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
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
	clients := fs.Int("clients", 1, "concurrent `clients` (calls in set-up at once)")
	dur := fs.Duration("duration", 5*time.Second, "how long to run")
	hold := fs.Duration("hold", 0, "how long each call lives before its delete (0: deleted at once, right after the answer)")
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
	if *clients < 1 || *dur <= 0 || *hold < 0 {
		fmt.Fprintln(stderr, "rtpctl bench setup: --clients must be >= 1, --duration > 0 and --hold >= 0")
		return ExitUsage
	}
	res, err := BenchSetup(context.Background(), *ng, *clients, *dur, *hold)
	if err != nil {
		fmt.Fprintf(stderr, "rtpctl bench setup: %v\n", err)
		return ExitUnreachable
	}
	res.HoldS = hold.Seconds()
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
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	at := func(pct int) float64 { return us(ds[min(len(ds)-1, len(ds)*pct/100)]) }
	return Latency{Mean: us(sum) / float64(len(ds)), P50: at(50), P90: at(90), P99: at(99), Max: us(ds[len(ds)-1])}
}
