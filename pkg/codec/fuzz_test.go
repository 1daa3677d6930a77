package codec

import (
	"encoding/binary"
	"testing"
)

// FuzzTranscoder feeds arbitrary packets (RTP or not) to transcoders of
// every codec this build has, each way from PCMU: nothing may panic, and
// what comes out is RTP of the output payload type with the output SSRC.
func FuzzTranscoder(f *testing.F) {
	f.Add(rtpPacket(0, 1, 160, 0x1234, make([]byte, 160)))
	f.Add(rtpPacket(101, 2, 320, 0x1234, []byte{5, 0x8a, 3, 0xc0}))
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 9})
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 200})
	var specs []Spec
	pcmu := PT{0, Format{Name: "PCMU", Clock: 8000}}
	dtmf := PT{101, Format{Name: "telephone-event", Clock: 8000}}
	for _, c := range []PT{{8, Format{Name: "PCMA", Clock: 8000}}, {9, Format{Name: "G722", Clock: 8000}}, {96, Format{Name: "opus", Clock: 48000, Channels: 2}}} {
		if !Supported(c.Name) {
			continue
		}
		specs = append(specs, Spec{In: []PT{pcmu, dtmf}, Out: c, DTMF: 101}, Spec{In: []PT{c, dtmf}, Out: pcmu, DTMF: 101, Pass: []uint8{101}})
	}
	cn := PT{13, Format{Name: "CN", Clock: 8000}}
	specs = append(specs, Spec{In: []PT{pcmu, cn, dtmf}, Out: pcmu, Pass: []uint8{0}, CNNoise: true, InbandDTMF: true},
		Spec{In: []PT{pcmu}, Out: pcmu, Pass: []uint8{0}, CN: 13, SilenceCN: true, DetectDTMF: true, DTMF: 101, Ptime: 30})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, s := range specs {
			tc, err := NewTranscoder(s)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 { // again, so state carries over
				tc.Process(pkt, func(out []byte) {
					if len(out) < 12 || out[0]>>6 != 2 {
						t.Fatalf("not RTP out: % x", out)
					}
					if pt := out[1] & 0x7f; pt != s.Out.PT && pt != s.DTMF && pt != 101 && pt != 13 {
						t.Fatalf("payload type %d out", pt)
					}
					if len(pkt) >= 12 && binary.BigEndian.Uint32(out[8:12]) != SSRC(binary.BigEndian.Uint32(pkt[8:12])) {
						t.Fatalf("SSRC %#x out", binary.BigEndian.Uint32(out[8:12]))
					}
				})
			}
		}
	})
}

// FuzzParseSpec: a spec is read or refused, never a panic.
func FuzzParseSpec(f *testing.F) {
	f.Add(Spec{In: []PT{{0, Format{Name: "PCMU", Clock: 8000}}}, Out: PT{8, Format{Name: "PCMA", Clock: 8000}}}.String())
	f.Add(`{"out":{"pt":0}}`)
	f.Fuzz(func(t *testing.T, s string) {
		if spec, err := ParseSpec(s); err == nil {
			if tc, err := NewTranscoder(spec); err == nil {
				tc.Process(rtpPacket(0, 1, 160, 1, make([]byte, 160)), func([]byte) {})
			}
		}
	})
}
