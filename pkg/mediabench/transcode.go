package mediabench

// Transcoding load: calls whose caller speaks PCMU and whose callee, offered
// the codec under test by the proxy's codec transcode, answers with it
// only; both parties send a 20 ms packet each 20 ms, as phones do, and the
// proxy transcodes every packet. What it costs: the proxy's CPU per call
// and how many such calls one core carries; and whether every packet came
// through.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/codec"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
)

// TranscodeConfig describes a transcoding run.
type TranscodeConfig struct {
	NG       string
	Calls    int           // default 100
	Duration time.Duration // measurement, default 10 s
	PIDs     []int         // the proxy's processes (with descendants)
	// Codec is the callee's codec ("opus", "G722", "PCMA"); the caller's
	// is PCMU.
	Codec string
}

// TranscodeResult is a transcoding run's outcome.
type TranscodeResult struct {
	Calls    int     `json:"calls"`
	Codec    string  `json:"codec"`
	Seconds  float64 `json:"seconds"`
	Sent     uint64  `json:"sent"`
	Received uint64  `json:"received"`
	Lost     uint64  `json:"lost"`
	// Wrong counts packets that arrived in another codec than the
	// receiver's (not transcoded).
	Wrong           uint64  `json:"wrong_codec"`
	ProxyCPUSeconds float64 `json:"proxy_cpu_seconds"`
	// CPUPerCall is the proxy's CPU per call, as a percentage of one core
	// (both directions transcoded); CallsPerCore the calls one core
	// carries at that cost.
	CPUPerCall   float64 `json:"cpu_percent_per_call"`
	CallsPerCore float64 `json:"calls_per_core"`
}

// codecRTPMap is the callee's payload type and rtpmap for each codec.
var codecRTPMap = map[string]struct {
	pt     uint8
	rtpmap string
}{"opus": {96, "opus/48000/2"}, "G722": {9, "G722/8000"}, "PCMA": {8, "PCMA/8000"}}

// RunTranscode sets up cfg.Calls transcoded calls, sends 20 ms packets
// both ways for cfg.Duration and measures the proxy.
func RunTranscode(ctx context.Context, cfg TranscodeConfig) (TranscodeResult, error) {
	if cfg.Calls <= 0 {
		cfg.Calls = 100
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Codec == "" {
		cfg.Codec = "opus"
	}
	cm, ok := codecRTPMap[cfg.Codec]
	if !ok {
		return TranscodeResult{}, fmt.Errorf("mediabench: codec %q: want opus, G722 or PCMA", cfg.Codec)
	}
	// The packets: 20 ms of a 440 Hz tone in PCMU for the caller, in the
	// callee's codec for the callee.
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	ulaw, err := codec.NewEncoder(codec.Format{Name: "PCMU", Clock: 8000}, 20)
	if err != nil {
		return TranscodeResult{}, err
	}
	pcmuPayload, _ := ulaw.Encode(nil, pcm)
	tc, err := codec.NewTranscoder(codec.Spec{In: []codec.PT{{PT: 0, Format: codec.Format{Name: "PCMU", Clock: 8000}}},
		Out: codec.PT{PT: cm.pt, Format: formatOf(cm.rtpmap)}})
	if err != nil {
		return TranscodeResult{}, fmt.Errorf("mediabench: %s encoder: %w", cfg.Codec, err)
	}
	var calleePayload []byte
	tc.Process(rtppacket.RTP{PayloadType: 0, SSRC: 1}.Packet(pcmuPayload), func(p []byte) { calleePayload = append([]byte(nil), p[12:]...) })
	if calleePayload == nil {
		return TranscodeResult{}, errors.New("mediabench: no callee payload")
	}

	type party struct {
		c    *net.UDPConn
		dest *net.UDPAddr
		seq  uint16
		ts   uint32
		ssrc uint32
	}
	parties := make([]*party, 2*cfg.Calls)
	defer func() {
		for _, p := range parties {
			if p != nil {
				_ = p.c.Close()
			}
		}
	}()
	for i := range parties {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return TranscodeResult{}, fmt.Errorf("mediabench: socket %d: %w", i, err)
		}
		parties[i] = &party{c: c, seq: uint16(rand.Uint32()), ts: rand.Uint32(), ssrc: rand.Uint32()}
	}
	tag := strconv.FormatUint(uint64(rand.Uint32()), 36)
	callID := func(i int) string { return "mbt-" + tag + "-" + strconv.Itoa(i) }
	setUp := make([]bool, cfg.Calls)
	defer func() { _ = deleteCalls(cfg.NG, callID, setUp) }()
	err = parallel(ctx, cfg.NG, cfg.Calls, 8, func(ctx context.Context, c *ngclient.Client, i int) error {
		a, b := parties[2*i], parties[2*i+1]
		offer := ngRequest("offer", callID(i), partySDP(a.c.LocalAddr().(*net.UDPAddr).Port, "RTP/AVP", ""))
		offer.Set("codec", bencode.NewDict(bencode.Pair{Key: "transcode", Value: bencode.Strs(cfg.Codec)}))
		forB, _, err := signal(ctx, c, callID(i), offer)
		setUp[i] = true
		if err != nil {
			return err
		}
		sdpB := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=mediabench\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio " +
			strconv.Itoa(b.c.LocalAddr().(*net.UDPAddr).Port) + " RTP/AVP " + strconv.Itoa(int(cm.pt)) + "\r\na=rtpmap:" +
			strconv.Itoa(int(cm.pt)) + " " + cm.rtpmap + "\r\na=sendrecv\r\na=ptime:20\r\n"
		forA, _, err := signal(ctx, c, callID(i), ngRequest("answer", callID(i), sdpB))
		if err != nil {
			return err
		}
		a.dest = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: forA}
		b.dest = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: forB}
		return nil
	})
	if err != nil {
		return TranscodeResult{}, fmt.Errorf("mediabench: setup: %w", err)
	}

	var measuring atomic.Bool
	var sent, received, wrong atomic.Uint64
	var wg sync.WaitGroup
	for i, p := range parties {
		wantPT := uint8(0) // the caller gets PCMU
		if i%2 == 1 {
			wantPT = cm.pt
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				n, err := p.c.Read(buf)
				if err != nil {
					return
				}
				if n < 12 || !measuring.Load() {
					continue
				}
				received.Add(1)
				if buf[1]&0x7f != wantPT {
					wrong.Add(1)
				}
			}
		}()
	}
	defer func() {
		for _, p := range parties {
			_ = p.c.SetReadDeadline(time.Now())
		}
		wg.Wait()
	}()
	sendRound := func(count bool) {
		for i, p := range parties {
			pt, payload, step := uint8(0), pcmuPayload, uint32(160)
			if i%2 == 1 {
				pt, payload = cm.pt, calleePayload
				if cfg.Codec == "opus" {
					step = 960
				}
			}
			p.seq++
			p.ts += step
			pkt := rtppacket.RTP{PayloadType: pt, Seq: p.seq, Timestamp: p.ts, SSRC: p.ssrc}.Packet(payload)
			if _, err := p.c.WriteToUDP(pkt, p.dest); err == nil && count {
				sent.Add(1)
			}
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range 50 { // a second of warm-up
		sendRound(false)
		select {
		case <-ctx.Done():
			return TranscodeResult{}, ctx.Err()
		case <-tick.C:
		}
	}
	time.Sleep(200 * time.Millisecond)
	measuring.Store(true)
	cpu0, err := cpuOf(cfg.PIDs)
	if err != nil {
		return TranscodeResult{}, err
	}
	start := time.Now()
	rounds := int(cfg.Duration / (20 * time.Millisecond))
	for range rounds {
		sendRound(true)
		select {
		case <-ctx.Done():
			return TranscodeResult{}, ctx.Err()
		case <-tick.C:
		}
	}
	secs := time.Since(start).Seconds()
	time.Sleep(300 * time.Millisecond) // what is in flight arrives
	cpu1, err := cpuOf(cfg.PIDs)
	if err != nil {
		return TranscodeResult{}, err
	}
	measuring.Store(false)
	res := TranscodeResult{Calls: cfg.Calls, Codec: cfg.Codec, Seconds: secs, Sent: sent.Load(), Received: received.Load(),
		Wrong: wrong.Load(), ProxyCPUSeconds: cpu1 - cpu0}
	if res.Sent > res.Received {
		res.Lost = res.Sent - res.Received
	}
	if len(cfg.PIDs) > 0 && res.ProxyCPUSeconds > 0 {
		cores := res.ProxyCPUSeconds / secs
		res.CPUPerCall = 100 * cores / float64(cfg.Calls)
		res.CallsPerCore = float64(cfg.Calls) / cores
	}
	return res, nil
}

// formatOf reads an rtpmap value (name/clock[/channels]).
func formatOf(rtpmap string) codec.Format {
	parts := strings.Split(rtpmap, "/")
	f := codec.Format{Name: parts[0]}
	if len(parts) > 1 {
		f.Clock, _ = strconv.Atoi(parts[1])
	}
	if len(parts) > 2 {
		f.Channels, _ = strconv.Atoi(parts[2])
	}
	return f
}
