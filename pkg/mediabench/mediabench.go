// Package mediabench measures the media path of an ng-controlled RTP proxy
// (rtpkit or rtpengine): it sets up calls over ng between pairs of local
// UDP sockets, sends RTP through the proxy both ways at a fixed rate, and
// reports forwarded packets, loss, one-way latency and, most of all, the
// CPU the proxy's processes spent per forwarded packet.
//
// The load generator runs on the same machine as the proxy and costs CPU
// of its own, so results are compared at fixed rates, and only the CPU of
// the given proxy processes (and their descendants) is counted.
package mediabench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/fdlimit"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
)

// Config describes one run.
type Config struct {
	NG       string        // ng address (host:port) of the proxy
	Calls    int           // calls to set up (default 100)
	PPS      int           // total packets per second offered, both directions together (0: as fast as possible)
	Duration time.Duration // measurement time after setup and warm-up (default 10 s)
	Payload  int           // RTP payload bytes (default 160, G.711 at 20 ms; at least 16)
	PIDs     []int         // proxy processes whose CPU is measured, each with all its descendants
	Progress io.Writer     // gets a progress line per second while measuring (nil: none)
	// FloodPPS, if > 0, adds one call whose A→B stream is sent at this
	// rate during the measurement (not counted with the others; plain RTP
	// whatever SRTP says).
	FloodPPS int
	// SRTP is the calls' SRTP mode: SRTPNone (both parties plain RTP),
	// SRTPFromRTP or SRTPBoth (SDES), SRTPFromDTLS; SRTPSuite the suite
	// (or DTLS-SRTP profile) under test
	// (default DefaultSRTPSuite): B's in rtp-srtp, A's in srtp-srtp (B
	// then answers with another, see planSRTP).
	SRTP, SRTPSuite string
}

// Result is the outcome of a run. Counts cover the measurement only, not
// the warm-up.
type Result struct {
	Calls           int     `json:"calls"`
	Seconds         float64 `json:"seconds"`
	Sent            uint64  `json:"sent"`
	Received        uint64  `json:"received"`
	Lost            uint64  `json:"lost"` // Sent - Received after a drain period
	SentAToB        uint64  `json:"sent_a_to_b"`
	SentBToA        uint64  `json:"sent_b_to_a"`
	ReceivedAToB    uint64  `json:"received_a_to_b"`
	ReceivedBToA    uint64  `json:"received_b_to_a"`
	SendErrors      uint64  `json:"send_errors"`
	OfferedPPS      float64 `json:"offered_pps"`
	ForwardedPPS    float64 `json:"forwarded_pps"`
	LatencyP50us    float64 `json:"latency_p50_us"` // one-way, sender's write to receiver's read
	LatencyP99us    float64 `json:"latency_p99_us"`
	ProxyCPUSeconds float64 `json:"proxy_cpu_seconds"` // user + system of the PIDs' trees over the measurement and drain
	CPUusPerPacket  float64 `json:"cpu_us_per_packet"` // proxy CPU µs per forwarded (received) packet
	LoadCPUSeconds  float64 `json:"load_cpu_seconds"`  // CPU of this process (the load generator) over the same span
	// Drops are the kernel's drop counters over the measurement: where
	// lost packets went (nil if /proc could not be read).
	Drops *Drops `json:"kernel_drops,omitempty"`
	// The flooded stream, with FloodPPS: packets sent, and forwarded to
	// its receiver, per second of the measurement.
	FloodSentPPS      float64 `json:"flood_sent_pps,omitempty"`
	FloodForwardedPPS float64 `json:"flood_forwarded_pps,omitempty"`
	// SetupSeconds is how long the calls' setup took (8 at a time), and
	// SetupCPUusPerCall the proxy's CPU over it per call (offer, answer
	// and, in rtp-dtls, the call's DTLS handshake).
	SetupSeconds      float64 `json:"setup_seconds"`
	SetupCPUusPerCall float64 `json:"setup_cpu_us_per_call,omitempty"`
	// SRTP: the mode and each party's suite ("" for plain RTP).
	SRTP       string `json:"srtp,omitempty"`
	SRTPSuiteA string `json:"srtp_suite_a,omitempty"`
	SRTPSuiteB string `json:"srtp_suite_b,omitempty"`
	// SRTPFailures are packets that reached an SRTP party during the
	// measurement and did not decrypt with the key the proxy gave it (they
	// count as lost); SRTPClear those of them that arrived unencrypted.
	// SRTPWarmupFailures are those of the warm-up: a proxy that answers
	// before its packet path has the answer's keys may relay the first
	// packets with the keys it offered.
	SRTPFailures       uint64 `json:"srtp_failures,omitempty"`
	SRTPClear          uint64 `json:"srtp_clear,omitempty"`
	SRTPWarmupFailures uint64 `json:"srtp_warmup_failures,omitempty"`
}

// Run sets up cfg.Calls calls through the proxy at cfg.NG, warms them up,
// sends RTP both ways for cfg.Duration, waits for the stragglers, deletes
// the calls and reports.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if cfg.NG == "" {
		return Result{}, errors.New("mediabench: no ng address")
	}
	if cfg.Calls <= 0 {
		cfg.Calls = 100
	}
	if cfg.Payload <= 0 {
		cfg.Payload = 160
	}
	if cfg.Payload < minPayload {
		return Result{}, fmt.Errorf("mediabench: payload %d < %d bytes", cfg.Payload, minPayload)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	plan, err := planSRTP(cfg.SRTP, cfg.SRTPSuite)
	if err != nil {
		return Result{}, err
	}
	// Two sockets per call, the flood call's and a margin.
	if _, err := fdlimit.Raise(2*cfg.Calls + 256); err != nil {
		return Result{}, fmt.Errorf("mediabench: %d calls: %w", cfg.Calls, err)
	}
	if len(cfg.PIDs) > 0 {
		if _, err := TreeCPU(cfg.PIDs); err != nil {
			return Result{}, fmt.Errorf("mediabench: %w", err)
		}
	}

	// Sockets: index 2i is party A of call i, 2i+1 party B.
	socks := make([]*socket, 0, 2*cfg.Calls)
	defer func() {
		for _, s := range socks {
			_ = unix.Close(s.fd)
		}
	}()
	tag := rand.Uint32()
	for i := 0; i < 2*cfg.Calls; i++ {
		s, err := newSocket()
		if err != nil {
			return Result{}, fmt.Errorf("mediabench: call %d: %w", i/2, err)
		}
		s.ssrc = tag ^ uint32(i+1)*0x9e3779b1
		s.seq = uint16(rand.Uint32())
		socks = append(socks, s)
	}

	// Calls.
	prefix := "mb-" + strconv.FormatUint(uint64(tag), 36) + "-"
	callID := func(i int) string { return prefix + strconv.Itoa(i) }
	setUp := make([]bool, cfg.Calls)
	defer func() {
		if derr := deleteCalls(cfg.NG, callID, setUp); derr != nil && err == nil {
			err = derr
		}
	}()
	setupCPU0, err := cpuOf(cfg.PIDs)
	if err != nil {
		return Result{}, err
	}
	setupStart := time.Now()
	err = parallel(ctx, cfg.NG, cfg.Calls, 8, func(ctx context.Context, c *ngclient.Client, i int) error {
		a, b := socks[2*i], socks[2*i+1]
		switch plan.mode {
		case SRTPFromDTLS:
			setUp[i] = true
			return setupDTLSCall(ctx, c, callID(i), a, b, plan)
		case SRTPFromRTP, SRTPBoth:
			setUp[i] = true // the offer may have made the call
			return setupSRTPCall(ctx, c, callID(i), a, b, plan)
		}
		forA, forB, err := setupCall(ctx, c, callID(i), a.port, b.port)
		if err != nil {
			return err
		}
		setUp[i] = true
		a.setDest(forA)
		b.setDest(forB)
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("mediabench: setup: %w", err)
	}
	setupSeconds := time.Since(setupStart).Seconds()
	setupCPU1, err := cpuOf(cfg.PIDs)
	if err != nil {
		return Result{}, err
	}

	var fl *flood
	if cfg.FloodPPS > 0 {
		if fl, err = newFlood(ctx, cfg.NG, prefix+"flood", cfg.FloodPPS); err != nil {
			return Result{}, fmt.Errorf("mediabench: flood call: %w", err)
		}
		defer fl.close()
		defer func() { _ = deleteCalls(cfg.NG, func(int) string { return prefix + "flood" }, []bool{true}) }()
	}

	base := time.Now()
	var cnt counters
	rcv, err := newReceiver(socks, tag, base, &cnt)
	if err != nil {
		return Result{}, fmt.Errorf("mediabench: %w", err)
	}
	go rcv.run()
	defer rcv.close()
	snd := newSender(socks, cfg.Payload, tag, base, &cnt)

	// Warm-up: a few packets each way on every call so that the proxy has
	// seen both parties (latching) before measuring.
	for k := 0; k < 3; k++ {
		snd.round(phaseWarmup)
		if err := sleep(ctx, 30*time.Millisecond); err != nil {
			return Result{}, err
		}
	}
	if err := sleep(ctx, 300*time.Millisecond); err != nil {
		return Result{}, err
	}
	if cnt.warmRecv.Load() == 0 {
		return Result{}, errors.New("mediabench: nothing relayed during warm-up")
	}

	// Measurement.
	cpu0, err := cpuOf(cfg.PIDs)
	if err != nil {
		return Result{}, err
	}
	self0 := selfCPU()
	srtpFailed0, srtpClear0 := cnt.srtpFailed.Load(), cnt.srtpClear.Load()
	drops0, dropsErr := readDrops()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go progress(cfg.Progress, &cnt, stopProgress, progressDone)
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopProgress:
		}
		close(stop)
	}()
	if fl != nil {
		fl.start()
	}
	sendTime := snd.paced(cfg.PPS, cfg.Duration, stop)
	if fl != nil {
		fl.end()
	}
	drain(&cnt)
	cpu1, err := cpuOf(cfg.PIDs)
	self1 := selfCPU()
	drops1, dropsErr1 := readDrops()
	close(stopProgress)
	<-progressDone
	if err != nil {
		return Result{}, err
	}
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("mediabench: %w", ctx.Err())
	}
	rcv.close()
	if rcv.lastErr != nil {
		return Result{}, fmt.Errorf("mediabench: %w", rcv.lastErr)
	}
	res = makeResult(cfg.Calls, sendTime, &cnt, rcv.lat, cpu1-cpu0)
	res.LoadCPUSeconds = self1 - self0
	res.SetupSeconds = setupSeconds
	if len(cfg.PIDs) > 0 {
		res.SetupCPUusPerCall = (setupCPU1 - setupCPU0) * 1e6 / float64(cfg.Calls)
	}
	res.SRTP, res.SRTPSuiteA, res.SRTPSuiteB = plan.mode, plan.suiteA, plan.suiteB
	res.SRTPFailures, res.SRTPClear = cnt.srtpFailed.Load()-srtpFailed0, cnt.srtpClear.Load()-srtpClear0
	res.SRTPWarmupFailures = srtpFailed0
	if dropsErr == nil && dropsErr1 == nil {
		load := make(map[int]bool, len(socks))
		for _, s := range socks {
			load[s.port] = true
		}
		if fl != nil {
			for _, p := range fl.ports() {
				load[p] = true
			}
		}
		d := dropsBetween(drops0, drops1, load)
		res.Drops = &d
	}
	if fl != nil && sendTime > 0 {
		res.FloodSentPPS = float64(fl.sent.Load()) / sendTime.Seconds()
		res.FloodForwardedPPS = float64(fl.arrived.Load()) / sendTime.Seconds()
	}
	return res, nil
}

func makeResult(calls int, sendTime time.Duration, cnt *counters, lat *reservoir, cpu float64) Result {
	r := Result{
		Calls: calls, Seconds: sendTime.Seconds(),
		SentAToB: cnt.sent[0].Load(), SentBToA: cnt.sent[1].Load(),
		ReceivedAToB: cnt.received[0].Load(), ReceivedBToA: cnt.received[1].Load(),
		SendErrors: cnt.sendErrs.Load(), ProxyCPUSeconds: cpu,
	}
	r.Sent = r.SentAToB + r.SentBToA
	r.Received = r.ReceivedAToB + r.ReceivedBToA
	if r.Sent > r.Received {
		r.Lost = r.Sent - r.Received
	}
	if r.Seconds > 0 {
		r.OfferedPPS = float64(r.Sent) / r.Seconds
		r.ForwardedPPS = float64(r.Received) / r.Seconds
	}
	if r.Received > 0 {
		r.CPUusPerPacket = cpu * 1e6 / float64(r.Received)
	}
	p := lat.percentiles(50, 99)
	r.LatencyP50us, r.LatencyP99us = p[0]/1e3, p[1]/1e3
	return r
}

// drain waits until no more packets arrive (50 ms without change after at
// least 100 ms), at most a second.
func drain(cnt *counters) {
	total := func() uint64 { return cnt.received[0].Load() + cnt.received[1].Load() }
	deadline := time.Now().Add(time.Second)
	time.Sleep(100 * time.Millisecond)
	last := total()
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n := total()
		if n == last {
			return
		}
		last = n
	}
}

func cpuOf(pids []int) (float64, error) {
	if len(pids) == 0 {
		return 0, nil
	}
	c, err := TreeCPU(pids)
	if err != nil {
		return 0, fmt.Errorf("mediabench: %w", err)
	}
	return c, nil
}

// progress writes a line per second until stop is closed.
func progress(w io.Writer, cnt *counters, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if w == nil {
		<-stop
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	var lastS, lastR uint64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s := cnt.sent[0].Load() + cnt.sent[1].Load()
		r := cnt.received[0].Load() + cnt.received[1].Load()
		fmt.Fprintf(w, "mediabench: %5.1fs sent %d (%d/s) received %d (%d/s)\n",
			time.Since(start).Seconds(), s, s-lastS, r, r-lastR)
		lastS, lastR = s, r
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mediabench: %w", ctx.Err())
	}
}

// deleteCalls deletes the calls that were set up, with a fresh context so
// that a cancelled run still cleans up; it returns the first error.
func deleteCalls(ng string, callID func(int) string, setUp []bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var idx []int
	for i, ok := range setUp {
		if ok {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	var (
		mu    sync.Mutex
		first error
	)
	_ = parallel(ctx, ng, len(idx), 8, func(ctx context.Context, c *ngclient.Client, k int) error {
		if _, err := exchange(ctx, c, ngRequest("delete", callID(idx[k]), "")); err != nil {
			mu.Lock()
			if first == nil {
				first = fmt.Errorf("mediabench: delete %s: %w", callID(idx[k]), err)
			}
			mu.Unlock()
		}
		return nil // delete the others all the same
	})
	return first
}

// selfCPU returns the user + system CPU seconds of this process so far.
func selfCPU() float64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
