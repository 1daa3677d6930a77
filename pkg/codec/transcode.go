package codec

// The transcoder of one direction of a call: RTP from one party in, RTP
// for the other out.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// PT is a payload type number with its format.
type PT struct {
	PT uint8 `json:"pt"`
	Format
}

// Spec says what a Transcoder does: the payload types the sender uses
// (In), the payload type the receiver gets (Out, with its ptime), the
// payload types that pass as they are because the receiver takes them
// too (Pass), and the receiver's RFC 4733 (DTMF) and CN payload types for
// the sender's (0: the sender's are dropped).
type Spec struct {
	In    []PT    `json:"in"`
	Out   PT      `json:"out"`
	Ptime int     `json:"ptime,omitempty"`
	Pass  []uint8 `json:"pass,omitempty"`
	DTMF  uint8   `json:"dtmf,omitempty"`
	CN    uint8   `json:"cn,omitempty"`
	// CNNoise: the sender's comfort noise (RFC 3389) becomes noise in
	// Out, a frame per CN packet, for a receiver without CN.
	// SilenceCN: the sender (without CN) goes silent, the receiver gets
	// CN packets (payload type CN) instead of silent frames.
	CNNoise   bool `json:"cn_noise,omitempty"`
	SilenceCN bool `json:"silence_cn,omitempty"`
	// DTMFClock is the clock of the receiver's telephone-event (0: 8000).
	DTMFClock int `json:"dtmf_clock,omitempty"`
	// InbandDTMF: the sender's RFC 4733 events become DTMF tones in Out
	// (the receiver has no telephone-event); the sender's audio during an
	// event is replaced by the tone.
	InbandDTMF bool `json:"inband_dtmf,omitempty"`
	// DetectDTMF: the sender's audio (8 kHz codecs) is listened to for
	// DTMF tones; each digit heard is reported (SetDTMFReport) and, when
	// the receiver takes telephone-event (DTMF), sent to it as RFC 4733
	// events in place of the tone.
	DetectDTMF bool `json:"detect_dtmf,omitempty"`
	// BlockDTMF (with DetectDTMF): a digit heard is replaced by silence,
	// and sent as no event (block DTMF); it is still reported.
	BlockDTMF bool `json:"block_dtmf,omitempty"`
}

// Detected is a DTMF digit heard in a sender's audio: its event code,
// when it started (input timestamp) and its length in 8 kHz units.
type Detected struct {
	Event     uint8
	Timestamp uint32
	Duration  int
}

// String is the spec's text form (rtp-fwd's fwd.Stream.Media).
func (s Spec) String() string {
	b, _ := json.Marshal(s)
	return string(b)
}

// ParseSpec reads a spec's text form.
func ParseSpec(text string) (Spec, error) {
	var s Spec
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return s, fmt.Errorf("transcoding spec: %w", err)
	}
	if s.Out.Clock <= 0 {
		return s, errors.New("transcoding spec: no output clock rate")
	}
	return s, nil
}

// SSRC is the SSRC of what a transcoder sends for a party that sends with
// ssrc: the same on every node and after a restart, never the party's.
func SSRC(ssrc uint32) uint32 { return ssrc ^ 0x5a17c0de }

// decoding is one input payload type's decoder and, if its rate is not
// the encoder's, resampler.
type decoding struct {
	f   Format
	dec Decoder
	rs  *Resampler
}

// Transcoder turns one party's RTP into the other's codec. Sequence
// numbers are its own (gaps in the input kept), SSRC is SSRC(input's),
// timestamps follow the input's, scaled to the output clock; the marker
// bit of an input packet goes on the next packet out.
type Transcoder struct {
	spec  Spec
	enc   Encoder
	decs  map[uint8]*decoding
	pass  [128]bool
	kind  [128]uint8 // kindAudio, kindDTMF, kindCN by input payload type
	clock [128]int   // the input payload types' clocks
	frame int

	pcm, tmp []int16
	out      []byte
	pkt      []byte

	started bool
	inSSRC  uint32 // the source being transcoded
	// seqOff maps a passed packet's sequence number to the one sent
	// (lastPass: the last packet sent was passed).
	seqOff          uint16
	lastPass        bool
	inBase, outBase uint32
	lastInSeq       uint16
	seq             uint16
	pendTS          uint32 // output timestamp of pcm[0]
	synced          bool   // pendTS runs on from the last frame
	marker          bool

	// The RFC 4733 event being played in-band (InbandDTMF): its
	// generator, start timestamp (input clock) and the samples of tone
	// made; evOn while an event plays or has played since the sender's
	// audio last passed, evUntil the input timestamp its tone covers up
	// to, evEnded once its end packet came.
	ev      *ToneGen
	evTS    uint32
	evMade  int
	evOn    bool
	evUntil uint32
	evEnded bool

	// DTMF events to inject (play DTMF) in place of the sender's audio,
	// the one playing first.
	inj      *injection
	injQueue []injection
	injPause int // 8 kHz units of audio to pass before the next injection

	// In-band detection (DetectDTMF): the detector, the digit being
	// heard (0: none), when it started (input and output timestamps) and
	// how long it has lasted (8 kHz units); report gets each digit.
	det      *DTMFDetector
	detDigit byte
	detTS    uint32
	detOutTS uint32
	detDur   int
	report   func(Detected)

	rng uint32 // comfort noise

	// The packet being processed, decoded once whoever needs it (a
	// decoder keeps state: decoding twice would corrupt it); detRS
	// resamples it to 8 kHz for the DTMF detector.
	decoded  bool
	silenced bool // the packet's audio was replaced by silence (t.tmp)
	decD     *decoding
	decErr   bool
	detRS    *Resampler
	det8k    []int16
}

// decode decodes the current packet's payload once (into t.tmp) with
// pt's decoder; nil if it cannot be.
func (t *Transcoder) decode(pt uint8, payload []byte) *decoding {
	if t.decoded {
		if t.decErr {
			return nil
		}
		return t.decD
	}
	t.decoded = true
	d := t.decoderFor(pt)
	t.decD, t.decErr = d, d == nil
	if d == nil {
		return nil
	}
	var err error
	if t.tmp, err = d.dec.Decode(t.tmp[:0], payload); err != nil || len(t.tmp) == 0 {
		t.decErr = true
		return nil
	}
	return d
}

// cnLevel is the noise level (−dBov) of the CN rtpkit sends for silence,
// rtpengine's default comfort noise payload.
const cnLevel = 32

// silent reports whether pcm is digital silence (every sample within
// ±3, rtpengine's default silence threshold of 0.01 %).
func silent(pcm []int16) bool {
	for _, s := range pcm {
		if s > 3 || s < -3 {
			return false
		}
	}
	return len(pcm) > 0
}

// noise plays one CN packet of the sender's (level −dBov) as a frame of
// white noise at that level in the output codec.
func (t *Transcoder) noise(emit func([]byte), ts, ssrc uint32, level byte, advance uint16) {
	if !t.synced {
		t.pcm = t.pcm[:0]
		t.pendTS = t.scale(ts, 8000)
		t.synced = true
	}
	rms := 32767 * math.Pow(10, -float64(level&0x7f)/20)
	n := len(t.pcm)
	t.pcm = growPCM(t.pcm, t.frame)
	for i := n; i < len(t.pcm); i++ {
		// xorshift32: uniform in ±√3·rms has that RMS.
		t.rng ^= t.rng << 13
		t.rng ^= t.rng >> 17
		t.rng ^= t.rng << 5
		u := float64(t.rng)/float64(math.MaxUint32)*2 - 1
		t.pcm[i] = int16(u * rms * math.Sqrt(3))
	}
	t.encodePending(emit, ssrc, advance)
}

// SetDTMFReport sets what gets the digits DetectDTMF hears.
func (t *Transcoder) SetDTMFReport(fn func(Detected)) { t.report = fn }

// listen feeds the detector one packet's audio (8 kHz) and, on the
// receiver's telephone-event, replaces the packet with the event while a
// digit lasts; true: the packet was replaced.
func (t *Transcoder) listen(emit func([]byte), pt uint8, ts, ssrc uint32, payload []byte, advance uint16) bool {
	d := t.decode(pt, payload)
	if d == nil {
		return false
	}
	if t.det == nil {
		det, err := NewDTMFDetector()
		if err != nil {
			t.spec.DetectDTMF = false
			return false
		}
		t.det = det
	}
	pcm := t.tmp
	if d.dec.Rate() != 8000 { // the detector hears 8 kHz
		if t.detRS == nil {
			rs, err := NewResampler(d.dec.Rate(), 8000)
			if err != nil {
				return false
			}
			t.detRS = rs
		}
		t.det8k = t.detRS.Process(t.det8k[:0], pcm)
		pcm = t.det8k
	}
	t.det.Feed(pcm)
	digit := t.det.Status()
	code := uint8(strings.IndexByte("0123456789*#ABCD", digit))
	switch {
	case t.detDigit == 0 && digit == 0:
		return false
	case t.detDigit != 0 && digit == t.detDigit: // goes on
		t.detDur += len(pcm)
	case t.detDigit != 0: // ended (or another digit began)
		ended := uint8(strings.IndexByte("0123456789*#ABCD", t.detDigit))
		if t.report != nil {
			t.report(Detected{Event: ended, Timestamp: t.detTS, Duration: t.detDur})
		}
		if t.spec.DTMF != 0 && !t.spec.BlockDTMF {
			ev := [4]byte{ended, 0x80 | 10, byte(t.detDur >> 8), byte(t.detDur)}
			for i := range 3 {
				if i == 0 {
					t.seq += advance
				} else {
					t.seq++
				}
				t.send(emit, false, t.spec.DTMF, t.detOutTS, SSRC(ssrc), ev[:])
			}
			t.synced = false
			advance = 1
		}
		t.detDigit = 0
		if digit == 0 {
			return false // this packet is audio again
		}
		fallthrough
	default: // a digit begins
		t.detDigit, t.detTS, t.detDur = digit, ts, len(pcm)
		t.detOutTS = t.scale(ts, d.f.Clock)
		if t.spec.DTMF != 0 {
			t.marker = true
		}
	}
	if t.spec.BlockDTMF {
		// Blocked: the tone's audio goes as silence (encoded, even in
		// the same codec), no event.
		clear(t.tmp)
		t.silenced = true
		return false
	}
	if t.spec.DTMF == 0 || int(code) > 15 {
		return false
	}
	ev := [4]byte{code, 10, byte(t.detDur >> 8), byte(t.detDur)}
	t.seq += advance
	t.send(emit, t.marker, t.spec.DTMF, t.detOutTS, SSRC(ssrc), ev[:])
	t.marker = false
	return true
}

// injection is a DTMF event being injected: its code, volume and length
// (in 8 kHz units, RFC 4733's), how much has been played, where it
// started (output timestamp) and, in-band, its tone.
type injection struct {
	event, volume uint8
	total, done   int
	pause         int // 8 kHz units after it before the next one
	started       bool
	ts            uint32
	tone          *ToneGen
}

// Inject queues a DTMF event (code 0–15, volume −dBm0, duration ms) to
// play in place of the sender's audio from its next packet on: as RFC
// 4733 packets when the receiver takes telephone-event (Spec.DTMF), else
// as the tone in the output codec (play DTMF).
func (t *Transcoder) Inject(event, volume uint8, durationMs int) {
	t.InjectPause(event, volume, durationMs, 100)
}

// InjectPause is Inject with the pause (ms) the sender's audio passes
// after the event before a next queued one plays (counted in packets of
// 20 ms).
func (t *Transcoder) InjectPause(event, volume uint8, durationMs, pauseMs int) {
	if durationMs <= 0 {
		durationMs = 250
	}
	t.injQueue = append(t.injQueue, injection{event: event & 15, volume: volume & 63, total: durationMs * 8, pause: pauseMs * 8})
}

// injected plays the injection with one packet of the sender's audio,
// which it replaces; false: the packet could not be used (undecodable)
// and goes its usual way.
func (t *Transcoder) injected(emit func([]byte), pt uint8, ts, ssrc uint32, payload []byte, advance uint16) bool {
	d := t.decode(pt, payload)
	if d == nil {
		return false
	}
	in := t.inj
	samples8k := len(t.tmp) * 8000 / d.dec.Rate()
	first := !in.started
	if first {
		in.started = true
		in.ts = t.scale(ts, d.f.Clock)
		if !t.synced {
			t.pcm = t.pcm[:0]
			t.pendTS = in.ts
			t.synced = true
		}
	}
	in.done += samples8k
	end := in.done >= in.total
	if end {
		in.done = in.total
	}
	if t.spec.DTMF != 0 {
		// RFC 4733: one event packet for this packet's time, the end
		// three times.
		ev := [4]byte{in.event, in.volume, byte(in.done >> 8), byte(in.done)}
		if end {
			ev[1] |= 0x80
		}
		n := 1
		if end {
			n = 3
		}
		for i := range n {
			if i == 0 {
				t.seq += advance
			} else {
				t.seq++
			}
			t.send(emit, first && i == 0, t.spec.DTMF, in.ts, SSRC(ssrc), ev[:])
		}
		if end {
			t.injPause, t.inj = in.pause, nil
			t.synced = false
		}
		return true
	}
	// In-band: the tone instead of the sender's samples, encoded as its
	// audio would have been.
	if in.tone == nil {
		in.tone = NewToneGen(t.enc.Rate(), in.event, in.volume)
		t.marker = true
	}
	n := len(t.tmp)
	if d.rs != nil || d.dec.Rate() != t.enc.Rate() {
		n = len(t.tmp) * t.enc.Rate() / d.dec.Rate()
	}
	m := len(t.pcm)
	t.pcm = growPCM(t.pcm, n)
	in.tone.Fill(t.pcm[m:])
	t.encodePending(emit, ssrc, advance)
	if end {
		t.injPause, t.inj = in.pause, nil
	}
	return true
}

// NewTranscoder builds a transcoder for spec.
func NewTranscoder(spec Spec) (*Transcoder, error) {
	if spec.Ptime <= 0 {
		spec.Ptime = 20
	}
	t := &Transcoder{spec: spec, decs: map[uint8]*decoding{}, pkt: make([]byte, 0, 1500), rng: 0x9e3779b9}
	for _, p := range spec.Pass {
		if p < 128 {
			t.pass[p] = true
		}
	}
	// What each input payload type is, and its clock, once: the packet
	// path looks them up rather than searching the spec.
	t.kind[13] = kindCN // CN's static number, unless the spec says otherwise
	seen := [128]bool{}
	for _, in := range spec.In {
		if in.PT >= 128 || seen[in.PT] {
			continue
		}
		seen[in.PT] = true
		t.kind[in.PT] = kindAudio
		switch {
		case in.Is("telephone-event"):
			t.kind[in.PT] = kindDTMF
		case in.Is("CN"):
			t.kind[in.PT] = kindCN
		}
		t.clock[in.PT] = in.Clock
	}
	// The encoder runs at the rate of the sender's first audio codec
	// where the output codec allows it (Opus), saving a resampling.
	rate := 0
	for _, in := range spec.In {
		if d, err := NewDecoder(in.Format); err == nil {
			rate = d.Rate()
			break
		}
	}
	var err error
	if spec.Out.Is("opus") {
		if rate == 0 {
			rate = 48000
		}
		t.enc, err = newOpusEncAt(spec.Out.Format, spec.Ptime, OpusRate(rate))
	} else {
		t.enc, err = NewEncoder(spec.Out.Format, spec.Ptime)
	}
	if err != nil {
		return nil, err
	}
	t.frame = t.enc.FrameSamples()
	return t, nil
}

func (t *Transcoder) decoderFor(pt uint8) *decoding {
	if d, ok := t.decs[pt]; ok {
		return d
	}
	var d *decoding
	for _, in := range t.spec.In {
		if in.PT != pt || supplementalName(in.Name) {
			continue
		}
		var dec Decoder
		var err error
		if in.Is("opus") {
			dec, err = newOpusDecAt(in.Format, OpusRate(t.enc.Rate()))
		} else {
			dec, err = NewDecoder(in.Format)
		}
		if err != nil {
			break
		}
		d = &decoding{f: in.Format, dec: dec}
		if dec.Rate() != t.enc.Rate() {
			if d.rs, err = NewResampler(dec.Rate(), t.enc.Rate()); err != nil {
				d = nil
			}
		}
		break
	}
	t.decs[pt] = d // nil: not decodable, dropped
	return d
}

func supplementalName(n string) bool {
	return strings.EqualFold(n, "telephone-event") || strings.EqualFold(n, "CN")
}

// Process implements rtp-fwd's media processor (fwd.MediaProc).
func (t *Transcoder) Process(pkt []byte, emit func([]byte)) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return
	}
	t.decoded, t.silenced = false, false
	off := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < off+4 {
			return
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:off+4]))
	}
	if off > len(pkt) {
		return
	}
	payload := pkt[off:]
	if pkt[0]&0x20 != 0 && len(payload) > 0 { // padding
		pad := int(payload[len(payload)-1])
		if pad > len(payload) {
			return
		}
		payload = payload[:len(payload)-pad]
	}
	pt := pkt[1] & 0x7f
	seq := binary.BigEndian.Uint16(pkt[2:4])
	ts := binary.BigEndian.Uint32(pkt[4:8])
	ssrc := binary.BigEndian.Uint32(pkt[8:12])
	if pkt[1]&0x80 != 0 {
		t.marker = true
	}
	if !t.started || ssrc != t.inSSRC {
		// A new source (the first, or the party restarted its stream):
		// its output (under its own mapped SSRC) starts from its numbers.
		t.started, t.inSSRC, t.synced, t.lastPass = true, ssrc, false, false
		t.inBase, t.outBase = ts, ts
		t.seq = seq - 1
		t.lastInSeq = seq - 1
		t.pcm = t.pcm[:0]
	}
	// Output sequence numbers keep the input's small gaps (loss stays
	// visible to the receiver); a jump resets to one step.
	gap := seq - t.lastInSeq
	t.lastInSeq = seq
	advance := uint16(1)
	if gap > 1 && gap < 100 {
		advance = gap
	}
	if t.spec.InbandDTMF && t.isDTMF(pt) {
		t.inband(emit, pt, ts, ssrc, payload, advance)
		return
	}
	if t.evOn {
		// The sender's audio while its event plays in-band is replaced
		// by the tone; after it the stream restarts at its time.
		if int32(ts-t.evUntil) < 0 {
			return
		}
		t.evOn = false
		t.pcm = t.pcm[:0]
		t.synced = false
	}
	if t.inj == nil && len(t.injQueue) > 0 && !t.isDTMF(pt) && !t.isCN(pt) {
		if t.injPause > 0 {
			t.injPause -= 160 // the pause is counted in 20 ms packets
			if t.injPause > 0 {
				goto play
			}
		}
		t.inj, t.injQueue = &t.injQueue[0], t.injQueue[1:]
	}
play:
	if t.inj != nil && !t.isDTMF(pt) && !t.isCN(pt) {
		if t.injected(emit, pt, ts, ssrc, payload, advance) {
			return
		}
	}
	if t.spec.DetectDTMF && !t.isDTMF(pt) && !t.isCN(pt) {
		if t.listen(emit, pt, ts, ssrc, payload, advance) {
			return
		}
	}
	if t.spec.SilenceCN && t.spec.CN != 0 && !t.isDTMF(pt) && !t.isCN(pt) {
		if d := t.decode(pt, payload); d != nil {
			if silent(t.tmp) {
				// Silence: comfort noise for the receiver instead.
				t.pcm, t.synced = t.pcm[:0], false
				t.seq += advance
				t.send(emit, false, t.spec.CN, t.scale(ts, d.f.Clock), SSRC(ssrc), []byte{cnLevel})
				return
			}
		}
	}
	switch {
	case t.pass[pt] && !t.silenced:
		// Passed packets keep the sender's numbering (gaps, repeats),
		// offset to continue from what rtpkit sent before them.
		t.pcm = t.pcm[:0]
		t.synced = false
		if !t.lastPass {
			t.seqOff = t.seq + advance - seq
		}
		t.seq = seq + t.seqOff
		t.send(emit, pkt[1]&0x80 != 0, pt, ts, SSRC(ssrc), payload)
		t.lastPass = true
		return
	case t.isDTMF(pt) || t.isCN(pt):
		out := t.spec.DTMF
		if t.isCN(pt) {
			out = t.spec.CN
		}
		if out == 0 && t.isCN(pt) && t.spec.CNNoise && len(payload) > 0 {
			t.noise(emit, ts, ssrc, payload[0], advance)
			return
		}
		if out == 0 {
			return
		}
		t.seq += advance
		inClock := t.clockOf(pt)
		if t.isDTMF(pt) && t.spec.DTMFClock > 0 && t.spec.DTMFClock != inClock && len(payload) >= 4 {
			// The receiver's telephone-event runs at another clock (that
			// of its codec): the event's duration is scaled with it.
			var ev [4]byte
			copy(ev[:], payload[:4])
			d := int(binary.BigEndian.Uint16(ev[2:4])) * t.spec.DTMFClock / inClock
			binary.BigEndian.PutUint16(ev[2:4], uint16(min(d, 65535)))
			t.send(emit, pkt[1]&0x80 != 0, out, t.scale(ts, inClock), SSRC(ssrc), ev[:])
			return
		}
		t.send(emit, pkt[1]&0x80 != 0, out, t.scale(ts, inClock), SSRC(ssrc), payload)
		return
	}
	d := t.decode(pt, payload)
	if d == nil {
		return
	}
	// Output timestamps run on from the last frame whatever the input's
	// do (a jump, a reset), as rtpengine's; they start from the input's
	// at the first packet and after packets that passed as they were.
	if !t.synced {
		t.pcm = t.pcm[:0]
		t.pendTS = t.scale(ts, d.f.Clock)
		t.synced = true
	}
	if d.rs != nil {
		t.pcm = d.rs.Process(t.pcm, t.tmp)
	} else {
		t.pcm = append(t.pcm, t.tmp...)
	}
	t.encodePending(emit, ssrc, advance)
}

// inband plays one RFC 4733 packet of the sender's as DTMF tone in the
// output codec: the tone grows with the event's duration, in frames of
// the output ptime; the end packet finishes it (its repeats, and packets
// of an event already played, do nothing).
func (t *Transcoder) inband(emit func([]byte), pt uint8, ts, ssrc uint32, p []byte, advance uint16) {
	if len(p) < 4 {
		return
	}
	clock := t.clockOf(pt)
	end := p[1]&0x80 != 0
	dur := int(binary.BigEndian.Uint16(p[2:4]))
	if t.ev == nil || ts != t.evTS {
		// A new event: what was pending of the audio goes, the tone
		// starts at the event's time.
		t.ev = NewToneGen(t.enc.Rate(), p[0], p[1]&0x3f)
		t.evTS, t.evMade, t.evEnded, t.evOn = ts, 0, false, true
		t.pcm = t.pcm[:0]
		t.pendTS = t.scale(ts, clock)
		t.marker = true
	}
	if t.evEnded {
		return
	}
	t.evUntil = ts + uint32(dur)
	need := dur*t.enc.Rate()/clock - t.evMade
	if need > 0 {
		n := len(t.pcm)
		t.pcm = growPCM(t.pcm, need)
		t.ev.Fill(t.pcm[n:])
		t.evMade += need
	}
	if end {
		t.evEnded = true
		if r := len(t.pcm) % t.frame; r != 0 { // the last frame, filled with silence
			t.pcm = append(t.pcm, make([]int16, t.frame-r)...)
		}
	}
	t.encodePending(emit, ssrc, advance)
}

// encodePending encodes and sends the whole frames of t.pcm.
func (t *Transcoder) encodePending(emit func([]byte), ssrc uint32, advance uint16) {
	outPerSample := float64(t.spec.Out.Clock) / float64(t.enc.Rate())
	first := true
	for len(t.pcm) >= t.frame {
		var err error
		t.out, err = t.enc.Encode(t.out[:0], t.pcm[:t.frame])
		if err == nil && len(t.out) > 0 {
			if first {
				t.seq += advance
				first = false
			} else {
				t.seq++
			}
			t.send(emit, t.marker, t.spec.Out.PT, t.pendTS, SSRC(ssrc), t.out)
			t.marker = false
		}
		t.pendTS += uint32(float64(t.frame) * outPerSample)
		n := copy(t.pcm, t.pcm[t.frame:])
		t.pcm = t.pcm[:n]
	}
}

// Kinds of input payload types (Transcoder.kind).
const (
	kindAudio = iota
	kindDTMF
	kindCN
)

func (t *Transcoder) isDTMF(pt uint8) bool { return t.kind[pt&0x7f] == kindDTMF }
func (t *Transcoder) isCN(pt uint8) bool   { return t.kind[pt&0x7f] == kindCN }

// clockOf is input payload type pt's clock (8000 if the spec gives none).
func (t *Transcoder) clockOf(pt uint8) int {
	if c := t.clock[pt&0x7f]; c > 0 {
		return c
	}
	return 8000
}

// scale maps an input timestamp of clock inClock to the output clock.
func (t *Transcoder) scale(ts uint32, inClock int) uint32 {
	d := int64(int32(ts - t.inBase))
	if inClock > 0 && inClock != t.spec.Out.Clock {
		d = d * int64(t.spec.Out.Clock) / int64(inClock)
	}
	return t.outBase + uint32(d)
}

func (t *Transcoder) send(emit func([]byte), marker bool, pt uint8, ts, ssrc uint32, payload []byte) {
	t.lastPass = false
	p := t.pkt[:12]
	p[0] = 0x80
	p[1] = pt
	if marker {
		p[1] |= 0x80
	}
	binary.BigEndian.PutUint16(p[2:4], t.seq)
	binary.BigEndian.PutUint32(p[4:8], ts)
	binary.BigEndian.PutUint32(p[8:12], ssrc)
	p = append(p, payload...)
	t.pkt = p
	emit(p)
}
