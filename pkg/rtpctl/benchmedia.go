package rtpctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/mediabench"
)

const benchMediaSummary = `Sets up calls through ng, pumps RTP both ways at a fixed rate (or flat
out with --pps=0), and reports offered and forwarded packets/s, loss, one-way
latency p50/p99, and the proxy's CPU µs per forwarded packet (from /proc of
--pids and their descendants). Works against rtpkit and rtpengine alike.

With --srtp the proxy converts SRTP (SDES keys in the SDP): rtp-srtp has
party A plain RTP/AVP and party B RTP/SAVP with --srtp-suite; srtp-srtp has
both parties RTP/SAVP, A with --srtp-suite and B with another suite
(AEAD_AES_128_GCM, or AES_CM_128_HMAC_SHA1_80 for an AEAD --srtp-suite), so
that the proxy decrypts and encrypts again every packet both ways; rtp-dtls has
party A plain RTP/AVP and party B DTLS-SRTP (UDP/TLS/RTP/SAVP, a=setup:active,
the --srtp-suite profile), one handshake per call with the proxy as the DTLS
server during the setup, whose proxy CPU per call is reported.`

func cmdBenchMedia(args []string, stdout, stderr io.Writer) int {
	var cfg mediabench.Config
	fs := cli.NewFlagSet("rtpctl bench media")
	fs.StringVar(&cfg.NG, "ng", "127.0.0.1:2223", "ng `ADDR:PORT` of the proxy")
	fs.IntVar(&cfg.Calls, "calls", 100, "calls to set up")
	fs.IntVar(&cfg.PPS, "pps", 20000, "total packets per second, both directions (0: as fast as possible)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measurement time")
	fs.IntVar(&cfg.Payload, "payload", 160, "RTP payload `bytes`")
	fs.IntVar(&cfg.FloodPPS, "flood", 0, "also flood one extra call's stream at this many `packets/s` (not counted with the others)")
	fs.StringVar(&cfg.SRTP, "srtp", "", "SRTP `MODE`: rtp-srtp, srtp-srtp or rtp-dtls (default: plain RTP both sides)")
	fs.StringVar(&cfg.SRTPSuite, "srtp-suite", mediabench.DefaultSRTPSuite, "SDES crypto `SUITE` under test (with --srtp)")
	transcode := fs.String("transcode", "", "transcoding load instead: the caller speaks PCMU, the callee only `CODEC` (opus, G722, PCMA) offered by the proxy's codec transcode; 20 ms packets both ways at 50 pps each; --pps and --payload do not apply")
	pids := fs.String("pids", "", "comma-separated `PIDS` of the proxy whose CPU (with descendants) is measured")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	label := fs.String("label", "", "name of the target in the output")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	synopsis := "rtpctl bench media [options]"
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cli.PrintUsage(stdout, fs, synopsis, benchMediaSummary)
			return ExitOK
		}
		fmt.Fprintf(stderr, "rtpctl bench media: %v\n", err)
		cli.PrintUsage(stderr, fs, synopsis, benchMediaSummary)
		return ExitUsage
	}
	if err := mediabench.CheckSRTP(cfg.SRTP, cfg.SRTPSuite); err != nil {
		fmt.Fprintf(stderr, "rtpctl bench media: %v\n", err)
		return ExitUsage
	}
	for _, f := range strings.Split(*pids, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			fmt.Fprintf(stderr, "rtpctl bench media: bad pid %q\n", f)
			return ExitUsage
		}
		cfg.PIDs = append(cfg.PIDs, pid)
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *label == "" {
		*label = cfg.NG
	}
	if *transcode != "" {
		return benchTranscode(ctx, mediabench.TranscodeConfig{NG: cfg.NG, Calls: cfg.Calls, Duration: cfg.Duration, PIDs: cfg.PIDs, Codec: *transcode},
			*label, *asJSON, stdout, stderr)
	}
	res, err := mediabench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "rtpctl bench media: %v\n", err)
		return ExitFailed
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
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return ExitOK
	}
	fmt.Fprintf(stdout, "%s: %d calls, %.1f s: offered %.0f pps, forwarded %.0f pps, lost %d of %d, latency p50/p99 %.0f/%.0f µs, proxy CPU %.2f s = %.2f µs per packet, load CPU %.2f s\n",
		*label, res.Calls, res.Seconds, res.OfferedPPS, res.ForwardedPPS, res.Lost, res.Sent,
		res.LatencyP50us, res.LatencyP99us, res.ProxyCPUSeconds, res.CPUusPerPacket, res.LoadCPUSeconds)
	if res.SetupCPUusPerCall > 0 {
		fmt.Fprintf(stdout, "%s: setup %.2f s, proxy CPU %.0f µs per call\n", *label, res.SetupSeconds, res.SetupCPUusPerCall)
	}
	if res.SRTP != "" {
		fmt.Fprintf(stdout, "%s: SRTP %s: A %s, B %s; packets that did not decrypt %d (of them unencrypted %d), during the warm-up %d\n",
			*label, res.SRTP, suiteName(res.SRTPSuiteA), suiteName(res.SRTPSuiteB), res.SRTPFailures, res.SRTPClear, res.SRTPWarmupFailures)
	}
	if cfg.FloodPPS > 0 {
		fmt.Fprintf(stdout, "%s: flooded stream: sent %.0f pps, forwarded %.0f pps\n", *label, res.FloodSentPPS, res.FloodForwardedPPS)
	}
	if d := res.Drops; d != nil {
		fmt.Fprintf(stdout, "%s: kernel drops: proxy's sockets %d, load generator's %d; UDP receive buffer errors %d, send buffer errors %d (the namespace's)\n",
			*label, d.OtherSockets, d.LoadSockets, d.RcvbufErrors, d.SndbufErrors)
	}
	return ExitOK
}

// suiteName is a party's SRTP suite in the text output.
func suiteName(s string) string {
	if s == "" {
		return "plain RTP"
	}
	return s
}

// benchTranscode runs and prints a transcoding load (--transcode).
func benchTranscode(ctx context.Context, cfg mediabench.TranscodeConfig, label string, asJSON bool, stdout, stderr io.Writer) int {
	res, err := mediabench.RunTranscode(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "rtpctl bench media: %v\n", err)
		return ExitFailed
	}
	if asJSON {
		out := struct {
			Target string `json:"target"`
			mediabench.TranscodeResult
		}{label, res}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return ExitOK
	}
	fmt.Fprintf(stdout, "%s: %d calls PCMU⇄%s, %.1f s: lost %d of %d, in the wrong codec %d; proxy CPU %.2f s = %.3f %% of a core per call, %.0f calls per core\n",
		label, res.Calls, res.Codec, res.Seconds, res.Lost, res.Sent, res.Wrong, res.ProxyCPUSeconds, res.CPUPerCall, res.CallsPerCore)
	return ExitOK
}
