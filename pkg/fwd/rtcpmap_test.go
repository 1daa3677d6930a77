package fwd

import (
	"testing"

	"github.com/pion/rtcp"
)

// TestMapRTCP: a compound SR+SDES+BYE and an RR+PLI get their SSRCs
// mapped, sender fields and report targets each only when asked.
func TestMapRTCP(t *testing.T) {
	const me, other = 0x1111, 0x2222
	build := func() []byte {
		b, err := rtcp.Marshal([]rtcp.Packet{
			&rtcp.SenderReport{SSRC: me, Reports: []rtcp.ReceptionReport{{SSRC: other}}},
			&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: me, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "abcde"}}}}},
			&rtcp.ReceiverReport{SSRC: me, Reports: []rtcp.ReceptionReport{{SSRC: other}, {SSRC: other}}},
			&rtcp.PictureLossIndication{SenderSSRC: me, MediaSSRC: other},
			&rtcp.Goodbye{Sources: []uint32{me}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct{ sender, reports bool }{{true, true}, {true, false}, {false, true}} {
		b := build()
		mapRTCP(b, tc.sender, tc.reports)
		pkts, err := rtcp.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		wantMe, wantOther := uint32(me), uint32(other)
		if tc.sender {
			wantMe = MapSSRC(me)
		}
		if tc.reports {
			wantOther = MapSSRC(other)
		}
		sr := pkts[0].(*rtcp.SenderReport)
		sd := pkts[1].(*rtcp.SourceDescription)
		rr := pkts[2].(*rtcp.ReceiverReport)
		pli := pkts[3].(*rtcp.PictureLossIndication)
		bye := pkts[4].(*rtcp.Goodbye)
		if sr.SSRC != wantMe || sr.Reports[0].SSRC != wantOther || sd.Chunks[0].Source != wantMe || rr.SSRC != wantMe ||
			rr.Reports[1].SSRC != wantOther || pli.SenderSSRC != wantMe || pli.MediaSSRC != wantOther || bye.Sources[0] != wantMe {
			t.Errorf("sender %v reports %v: %+v %+v %+v %+v %+v", tc.sender, tc.reports, sr, sd, rr, pli, bye)
		}
	}
	// Truncated or foreign input is left alone, never read past.
	b := build()
	mapRTCP(b[:13], true, true)
	mapRTCP([]byte{0x80, 200, 0xff, 0xff}, true, true)
}

// FuzzMapRTCP: any datagram is mapped or left, never a panic, and mapping
// twice gives it back.
func FuzzMapRTCP(f *testing.F) {
	f.Add([]byte{0x81, 200, 0, 12, 0, 0, 0x11, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x22, 0x22})
	f.Add([]byte{0x81, 202, 0, 2, 0, 0, 0x11, 0x11, 1, 1, 'x', 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		q := append([]byte(nil), p...)
		mapRTCP(q, true, true)
		mapRTCP(q, true, true)
		if string(q) != string(p) {
			t.Fatalf("mapped twice: % x, was % x", q, p)
		}
	})
}
