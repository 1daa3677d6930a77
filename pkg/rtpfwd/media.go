package rtpfwd

// Transcoding and DTMF events in rtp-fwd: the transcoder of a stream comes
// from its call record (the receiving party's Media.Transcode), built by
// pkg/codec on the engine's media goroutines; the DTMF events the engine
// reports go to the bus (fwdapi.DTMFEvent) and, with --dtmf-log-dest, as
// rtpengine's JSON to a UDP destination.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/codec"
	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// newTranscoder is the engine's media factory (fwd.Config.Media); the
// digits a transcoder hears in a party's audio go to dtmf (nil: nowhere).
func newTranscoder(log *slog.Logger, dtmf func() *dtmfSink) fwd.MediaFactory {
	return func(call string, id fwd.StreamID, spec string) (fwd.MediaProc, error) {
		s, err := codec.ParseSpec(spec)
		if err != nil {
			log.Warn("transcoding spec refused", "call", call, "err", err)
			return nil, err
		}
		t, err := codec.NewTranscoder(s)
		if err != nil {
			log.Warn("transcoder not built: the party's media is dropped", "call", call, "to", s.Out.Format.String(), "err", err)
			return nil, err
		}
		if sink := dtmf(); sink != nil && s.DetectDTMF {
			t.SetDTMFReport(func(d codec.Detected) {
				sink.take(fwd.DTMFEvent{Call: call, Stream: id, Event: d.Event, Volume: 10, Duration: uint16(min(d.Duration, 65535)), Timestamp: d.Timestamp})
			})
		}
		return t, nil
	}
}

// transcodeSpec is the media spec of the stream of media m whose packets
// go to the party of pm: "" unless pm is sent a transcoded codec.
func transcodeSpec(m, pm *nodestate.Media) string {
	if pm == nil || pm.Transcode == nil {
		return ""
	}
	s := codec.Spec{Out: ptOf(*pm.Transcode), Ptime: pm.Ptime}
	// A repacketized party's codec is decoded and encoded too.
	repack := slices.Contains(pm.Flags, nodestate.FlagRepacketize)
	for _, p := range m.PayloadTypes {
		s.In = append(s.In, ptOf(p))
		for _, q := range pm.PayloadTypes {
			if q.PT == p.PT && strings.EqualFold(q.Encoding, p.Encoding) && q.Clock == p.Clock && (!repack || strings.EqualFold(p.Encoding, "telephone-event") || strings.EqualFold(p.Encoding, "CN")) {
				s.Pass = append(s.Pass, p.PT)
			}
		}
	}
	// Events the receiver cannot take are played to it as tones; tones
	// the sender makes become events for a receiver that takes them
	// (telephone-event added for it), and are listened to with
	// detect-DTMF.
	s.InbandDTMF = dtmfPT(m) != 0 && dtmfPT(pm) == 0
	s.DetectDTMF = dtmfPT(m) == 0 && dtmfPT(pm) != 0 || slices.Contains(m.Flags, nodestate.FlagDetectDTMF)
	// block DTMF on a transcoded party: its in-band digits go as silence.
	if slices.Contains(m.Flags, nodestate.FlagBlockDTMF) {
		s.DetectDTMF, s.BlockDTMF = true, true
	}
	// Comfort noise the receiver cannot take is played as noise; the
	// sender's silence is sent as CN to a receiver that takes it (CN
	// added for it).
	s.CNNoise = hasCN(m) && !hasCN(pm)
	s.SilenceCN = !hasCN(m) && hasCN(pm)
	// The receiver's telephone-event: the one at its codec's clock if
	// it has one, else its first.
	for _, q := range pm.PayloadTypes {
		if strings.EqualFold(q.Encoding, "telephone-event") && (s.DTMF == 0 || q.Clock == s.Out.Clock && s.DTMFClock != s.Out.Clock) {
			s.DTMF, s.DTMFClock = q.PT, q.Clock
		}
	}
	for _, q := range pm.PayloadTypes {
		switch {
		case strings.EqualFold(q.Encoding, "CN") && q.Clock == 8000 && s.CN == 0:
			s.CN = q.PT
		}
	}
	return s.String()
}

func ptOf(p nodestate.PayloadType) codec.PT {
	ch := 1
	if n, err := strconv.Atoi(p.Params); err == nil && n > 0 && n < 256 {
		ch = n
	}
	return codec.PT{PT: p.PT, Format: codec.Format{Name: p.Encoding, Clock: p.Clock, Channels: ch, Fmtp: p.Fmtp}}
}

// dtmfPT is the payload type of media m's RFC 4733 events (0: none).
func dtmfPT(m *nodestate.Media) uint8 {
	for _, p := range m.PayloadTypes {
		if strings.EqualFold(p.Encoding, "telephone-event") {
			return p.PT
		}
	}
	return 0
}

// dtmfSink takes the engine's DTMF events (fwd.Config.DTMF) without
// blocking a media goroutine; publishDTMF sends them on.
type dtmfSink struct {
	ch    chan fwd.DTMFEvent
	drops atomic.Uint64
}

func newDTMFSink() *dtmfSink { return &dtmfSink{ch: make(chan fwd.DTMFEvent, 256)} }

func (d *dtmfSink) take(ev fwd.DTMFEvent) {
	select {
	case d.ch <- ev:
	default:
		d.drops.Add(1)
	}
}

// dtmfOf fills in the call's side of an event: the sending party's tag
// and label, the call's tags and the socket.
func (r *reconciler) dtmfOf(ev fwd.DTMFEvent, worker string) fwdapi.DTMF {
	r.mu.Lock()
	defer r.mu.Unlock()
	clock := 8000
	out := fwdapi.DTMF{Worker: worker, CallID: ev.Call, Time: time.Now(), Source: ev.Source, Event: ev.Event,
		Digit: fwdapi.DigitOf(ev.Event), Volume: ev.Volume, Local: r.locals[ev.Stream]}
	c := r.calls[ev.Call]
	for _, l := range c.Legs {
		out.Tags = append(out.Tags, l.Tag)
		for _, m := range l.Medias {
			for _, st := range m.Streams {
				if st.Local == out.Local {
					out.SourceTag, out.SourceLabel = l.Tag, l.Label
					for _, p := range m.PayloadTypes {
						if p.PT == ev.PT && p.Clock > 0 {
							clock = p.Clock
						}
					}
				}
			}
		}
	}
	out.Duration = int(ev.Duration) * 1000 / clock
	if !out.Source.IsValid() { // heard in the audio: where the party sends from
		if st, ok := r.eng.Stats(ev.Stream); ok {
			out.Source = st.Endpoint
		}
	}
	return out
}

// dtmfLogJSON is rtpengine's DTMF log line (its dtmf-log-dest datagram).
func dtmfLogJSON(d fwdapi.DTMF) []byte {
	tags := d.Tags
	if tags == nil {
		tags = []string{}
	}
	b, _ := json.Marshal(struct {
		CallID    string   `json:"callid"`
		SourceTag string   `json:"source_tag"`
		Tags      []string `json:"tags"`
		Type      string   `json:"type"`
		Timestamp int64    `json:"timestamp"`
		SourceIP  string   `json:"source_ip"`
		Event     uint8    `json:"event"`
		Duration  int      `json:"duration"`
		Volume    uint8    `json:"volume"`
	}{d.CallID, d.SourceTag, tags, "DTMF", d.Time.Unix(), d.Source.Addr().String(), d.Event, d.Duration, d.Volume})
	return b
}

// publishDTMF sends the sink's events on the bus and to dest (if valid)
// until ctx ends.
func (r *reconciler) publishDTMF(ctx context.Context, c *bus.Conn, sink *dtmfSink, worker string, dest netip.AddrPort, log *slog.Logger) {
	var udp *net.UDPConn
	if dest.IsValid() {
		var err error
		if udp, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dest)); err != nil {
			log.Error("dtmf-log-dest: no socket, DTMF events go to the bus only", "dest", dest, "err", err)
		} else {
			defer func() { _ = udp.Close() }()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-sink.ch:
			d := r.dtmfOf(ev, worker)
			log.Info("DTMF event", "call", d.CallID, "tag", d.SourceTag, "digit", d.Digit, "duration_ms", d.Duration)
			if err := bus.Publish(c, fwdapi.DTMFEvent, d); err != nil {
				log.Warn("DTMF event not published", "err", err)
			}
			if udp != nil {
				if _, err := udp.Write(dtmfLogJSON(d)); err != nil {
					log.Warn("dtmf-log-dest: event not sent", "dest", dest, "err", err)
				}
			}
		}
	}
}

// followPlayDTMF takes ng-ctl's play DTMF requests for this worker's
// sockets (ngapi.PlayDTMFEvent) and plays them into the party's media.
func (r *reconciler) followPlayDTMF(c *bus.Conn, log *slog.Logger) error {
	_, err := bus.Subscribe(c, ngapi.PlayDTMFEvent, func(_ string, p ngapi.PlayDTMF) {
		r.mu.Lock()
		id, ok := r.ids[p.Local]
		cfg := r.inst[p.Local]
		r.mu.Unlock()
		if !ok {
			return // another worker's socket
		}
		if cfg.Media == "" {
			log.Warn("play DTMF: the party's media is not transcoded (inject-DTMF missing?)", "call", p.Call, "local", p.Local)
			return
		}
		if err := r.eng.InjectDTMF(id, fwd.Injection{Event: p.Event, Volume: p.Volume, Duration: p.Duration, Pause: p.Pause}); err != nil {
			log.Warn("play DTMF failed", "call", p.Call, "local", p.Local, "err", err)
			return
		}
		log.Info("play DTMF", "call", p.Call, "local", p.Local, "digit", fwdapi.DigitOf(p.Event), "duration_ms", p.Duration)
	})
	if err != nil {
		return fmt.Errorf("follow play DTMF: %w", err)
	}
	return nil
}

// hasCN reports whether media m's party takes comfort noise (CN at 8 kHz).
func hasCN(m *nodestate.Media) bool {
	return slices.ContainsFunc(m.PayloadTypes, func(p nodestate.PayloadType) bool {
		return strings.EqualFold(p.Encoding, "CN") && p.Clock == 8000
	})
}
