//go:build cgo && !notranscode

package codec

import (
	"encoding/binary"
	"testing"
)

// TestToneGenDetected: every event's tone, made by ToneGen and sent as
// PCMU, is the digit spandsp's receiver hears, and silence none.
func TestToneGenDetected(t *testing.T) {
	const digits = "0123456789*#ABCD"
	enc, _ := NewEncoder(Format{Name: "PCMU", Clock: 8000}, 20)
	dec, _ := NewDecoder(Format{Name: "PCMU", Clock: 8000})
	for ev := range 16 {
		d, err := NewDTMFDetector()
		if err != nil {
			t.Fatal(err)
		}
		g := NewToneGen(8000, uint8(ev), 10)
		var heard string
		pcm := make([]int16, 160)
		for i := range 10 { // 100 ms of tone, 100 ms of silence
			if i < 5 {
				g.Fill(pcm)
			} else {
				clear(pcm)
			}
			b, _ := enc.Encode(nil, pcm)
			back, _ := dec.Decode(nil, b)
			heard += d.Feed(back)
		}
		if heard != digits[ev:ev+1] {
			t.Errorf("event %d: heard %q, want %q", ev, heard, digits[ev:ev+1])
		}
	}
}

// TestInbandDTMF: a sender's RFC 4733 event for a receiver without
// telephone-event becomes the tone in PCMU, in place of the sender's audio
// while it lasts, once however often its end packet repeats; audio before
// and after passes.
func TestInbandDTMF(t *testing.T) {
	pcmu := PT{0, Format{Name: "PCMU", Clock: 8000}}
	tc, err := NewTranscoder(Spec{In: []PT{pcmu, {101, Format{Name: "telephone-event", Clock: 8000}}}, Out: pcmu, Pass: []uint8{0}, InbandDTMF: true})
	if err != nil {
		t.Fatal(err)
	}
	var outs [][]byte
	emit := func(b []byte) { outs = append(outs, append([]byte(nil), b...)) }
	silence := make([]byte, 160)
	for i := range silence {
		silence[i] = 0xff
	}
	seq, ts := uint16(1), uint32(1000)
	audio := func(n int) {
		for range n {
			tc.Process(rtpPacket(0, seq, ts, 7, silence), emit)
			seq++
			ts += 160
		}
	}
	audio(5)
	evTS := ts
	for i, d := range []uint16{160, 320, 480, 640, 800, 960, 960, 960} {
		end := byte(0)
		if i >= 5 {
			end = 0x80
		}
		tc.Process(rtpPacket(101, seq, evTS, 7, []byte{8, end | 10, byte(d >> 8), byte(d)}), emit)
		seq++
		if i < 5 { // the sender's audio beside the event: replaced
			tc.Process(rtpPacket(0, seq, ts, 7, silence), emit)
			seq++
			ts += 160
		}
	}
	ts = evTS + 960
	audio(5)
	if len(outs) != 5+6+5 {
		t.Fatalf("%d packets out, want 16 (5 audio, 6 of tone, 5 audio)", len(outs))
	}
	dec, _ := NewDecoder(pcmu.Format)
	det, _ := NewDTMFDetector()
	heard := ""
	for i, o := range outs {
		if want := uint32(1000 + 160*i); binary.BigEndian.Uint32(o[4:8]) != want {
			t.Fatalf("packet %d: timestamp %d, want %d", i, binary.BigEndian.Uint32(o[4:8]), want)
		}
		if o[1]&0x7f != 0 {
			t.Fatalf("packet %d: PT %d", i, o[1]&0x7f)
		}
		pcm, _ := dec.Decode(nil, o[12:])
		heard += det.Feed(pcm)
	}
	if heard != "8" {
		t.Fatalf("heard %q, want \"8\"", heard)
	}
	if outs[5][1]&0x80 == 0 {
		t.Errorf("the tone's first packet has no marker bit")
	}
}

// TestInjectDTMF: an injected event replaces the sender's audio, as RFC
// 4733 packets for a receiver with telephone-event (ended three times,
// its timestamp the event's start) or as the tone in its codec.
func TestInjectDTMF(t *testing.T) {
	pcmu := PT{0, Format{Name: "PCMU", Clock: 8000}}
	silence := make([]byte, 160)
	for i := range silence {
		silence[i] = 0xff
	}
	for _, rfc := range []bool{true, false} {
		spec := Spec{In: []PT{pcmu}, Out: pcmu, Pass: []uint8{0}}
		if rfc {
			spec.DTMF = 101
		}
		tc, err := NewTranscoder(spec)
		if err != nil {
			t.Fatal(err)
		}
		var outs [][]byte
		emit := func(b []byte) { outs = append(outs, append([]byte(nil), b...)) }
		for i := range 12 {
			if i == 2 {
				tc.Inject(9, 8, 100)
			}
			tc.Process(rtpPacket(0, uint16(100+i), uint32(8000+160*i), 7, silence), emit)
		}
		if rfc {
			// 2 audio, 5 event packets (the last ended, thrice), 5 audio.
			if len(outs) != 2+4+3+5 {
				t.Fatalf("RFC 4733: %d packets out", len(outs))
			}
			for i, o := range outs[2:9] {
				dur := binary.BigEndian.Uint16(o[14:16])
				end := o[13]&0x80 != 0
				if o[1]&0x7f != 101 || o[12] != 9 || binary.BigEndian.Uint32(o[4:8]) != 8320 || end != (i >= 4) || dur != uint16(160*min(i+1, 5)) {
					t.Fatalf("event packet %d: % x", i, o[:16])
				}
			}
			continue
		}
		dec, _ := NewDecoder(pcmu.Format)
		det, _ := NewDTMFDetector()
		heard := ""
		for _, o := range outs {
			pcm, _ := dec.Decode(nil, o[12:])
			heard += det.Feed(pcm)
		}
		if len(outs) != 12 || heard != "9" {
			t.Fatalf("in-band: %d packets, heard %q", len(outs), heard)
		}
	}
}

// TestDetectDTMF: a digit's tone in a sender's PCMU is heard, reported
// once with its length, and sent as RFC 4733 events in place of the tone
// to a receiver with telephone-event; the audio around it passes.
func TestDetectDTMF(t *testing.T) {
	pcmu := PT{0, Format{Name: "PCMU", Clock: 8000}}
	tc, err := NewTranscoder(Spec{In: []PT{pcmu}, Out: pcmu, Pass: []uint8{0}, DTMF: 101, DetectDTMF: true})
	if err != nil {
		t.Fatal(err)
	}
	var reports []Detected
	tc.SetDTMFReport(func(d Detected) { reports = append(reports, d) })
	enc, _ := NewEncoder(pcmu.Format, 20)
	g := NewToneGen(8000, 7, 10)
	var outs [][]byte
	emit := func(b []byte) { outs = append(outs, append([]byte(nil), b...)) }
	pcm := make([]int16, 160)
	for i := range 20 {
		if i >= 5 && i < 12 { // 140 ms of tone
			g.Fill(pcm)
		} else {
			clear(pcm)
		}
		p, _ := enc.Encode(nil, pcm)
		tc.Process(rtpPacket(0, uint16(i), uint32(160*i), 3, p), emit)
	}
	if len(reports) != 1 || reports[0].Event != 7 || reports[0].Duration < 800 || reports[0].Duration > 1280 {
		t.Fatalf("reports %+v, want one of event 7, about 140 ms", reports)
	}
	events, ends := 0, 0
	for _, o := range outs {
		if o[1]&0x7f == 101 {
			events++
			if o[12] != 7 {
				t.Fatalf("event %d", o[12])
			}
			if o[13]&0x80 != 0 {
				ends++
			}
		}
	}
	if ends != 3 || events < 6 {
		t.Fatalf("%d event packets, %d of them ends; want the digit's length of them and three ends", events, ends)
	}
}

// TestDetectDTMFWideband: a digit in G.722 (16 kHz) is heard too (the
// detector gets the audio resampled to 8 kHz), and the audio around it,
// decoded once per packet, passes on as PCMU with its usual quality.
func TestDetectDTMFWideband(t *testing.T) {
	g722 := PT{9, Format{Name: "G722", Clock: 8000}}
	tc, err := NewTranscoder(Spec{In: []PT{g722}, Out: PT{0, Format{Name: "PCMU", Clock: 8000}}, DetectDTMF: true})
	if err != nil {
		t.Fatal(err)
	}
	var reports []Detected
	tc.SetDTMFReport(func(d Detected) { reports = append(reports, d) })
	enc, _ := NewEncoder(g722.Format, 20)
	g := NewToneGen(16000, 11, 10)
	pcm := make([]int16, 320)
	outs := 0
	for i := range 20 {
		if i >= 5 && i < 12 {
			g.Fill(pcm)
		} else {
			clear(pcm)
		}
		p, _ := enc.Encode(nil, pcm)
		tc.Process(rtpPacket(9, uint16(i), uint32(160*i), 3, p), func([]byte) { outs++ })
	}
	if len(reports) != 1 || reports[0].Event != 11 {
		t.Fatalf("reports %+v, want one of event 11 (#)", reports)
	}
	if outs != 20 {
		t.Fatalf("%d packets out, want 20 (no telephone-event at the receiver: the audio passes)", outs)
	}
}

// TestBlockInbandDTMF: with block DTMF, a digit heard in a transcoded
// party's audio is replaced by silence (the receiver's detector hears
// nothing of it), sent as no event, and still reported.
func TestBlockInbandDTMF(t *testing.T) {
	pcmu := PT{0, Format{Name: "PCMU", Clock: 8000}}
	tc, err := NewTranscoder(Spec{In: []PT{pcmu}, Out: pcmu, Pass: []uint8{0}, DTMF: 101, DetectDTMF: true, BlockDTMF: true})
	if err != nil {
		t.Fatal(err)
	}
	var reports []Detected
	tc.SetDTMFReport(func(d Detected) { reports = append(reports, d) })
	enc, _ := NewEncoder(pcmu.Format, 20)
	dec, _ := NewDecoder(pcmu.Format)
	det, _ := NewDTMFDetector()
	g := NewToneGen(8000, 2, 10)
	pcm := make([]int16, 160)
	heard, outs := "", 0
	for i := range 25 {
		if i >= 5 && i < 15 {
			g.Fill(pcm)
		} else {
			clear(pcm)
		}
		p, _ := enc.Encode(nil, pcm)
		tc.Process(rtpPacket(0, uint16(i), uint32(160*i), 3, p), func(b []byte) {
			outs++
			if b[1]&0x7f != 0 {
				t.Fatalf("payload type %d out: the digit went as an event", b[1]&0x7f)
			}
			got, _ := dec.Decode(nil, b[12:])
			heard += det.Feed(got)
		})
	}
	if len(reports) != 1 || reports[0].Event != 2 {
		t.Fatalf("reports %+v, want one of event 2", reports)
	}
	if heard != "" || outs != 25 {
		t.Fatalf("the receiver heard %q in %d packets, want nothing in 25", heard, outs)
	}
}
