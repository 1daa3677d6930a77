// Command mediabench runs one RTP media load through an ng-controlled proxy
// (rtpkit or rtpengine) and reports forwarding rate, loss, latency and the
// proxy's CPU per forwarded packet; see package mediabench.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rtpkit/rtpkit/pkg/mediabench"
)

func main() {
	os.Exit(run())
}

func run() int {
	var cfg mediabench.Config
	fs := flag.NewFlagSet("mediabench", flag.ContinueOnError)
	fs.StringVar(&cfg.NG, "ng", "127.0.0.1:2223", "ng `ADDR:PORT` of the proxy")
	fs.IntVar(&cfg.Calls, "calls", 100, "calls to set up")
	fs.IntVar(&cfg.PPS, "pps", 20000, "total packets per second, both directions (0: as fast as possible)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measurement time")
	fs.IntVar(&cfg.Payload, "payload", 160, "RTP payload `bytes`")
	pids := fs.String("pids", "", "comma-separated `PIDS` of the proxy processes whose CPU (with descendants) is measured")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	label := fs.String("label", "", "name of the target in the output")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	for _, f := range strings.Split(*pids, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			fmt.Fprintf(os.Stderr, "mediabench: bad pid %q\n", f)
			return 2
		}
		cfg.PIDs = append(cfg.PIDs, pid)
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := mediabench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mediabench: %v\n", err)
		return 1
	}
	if *label == "" {
		*label = cfg.NG
	}
	if *asJSON {
		out := struct {
			Target string `json:"target"`
			PPS    int    `json:"target_pps"`
			mediabench.Result
		}{*label, cfg.PPS, res}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return 0
	}
	fmt.Printf("%s: %d calls, %.1f s: offered %.0f pps, forwarded %.0f pps, lost %d of %d, latency p50/p99 %.0f/%.0f µs, proxy CPU %.2f s = %.2f µs per packet, load CPU %.2f s\n",
		*label, res.Calls, res.Seconds, res.OfferedPPS, res.ForwardedPPS, res.Lost, res.Sent,
		res.LatencyP50us, res.LatencyP99us, res.ProxyCPUSeconds, res.CPUusPerPacket, res.LoadCPUSeconds)
	return 0
}
