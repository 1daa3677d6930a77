package sdp

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// fuzzPlan derives a plan from a parsed SDP: ports 10000+2i, address
// 203.0.113.1 (2001:db8::1 with flag bit 0), codecs from PayloadTypes when
// they parse; the other flag bits switch the optional edits on.
func fuzzPlan(s *Session, flags uint8) Plan {
	addr := netip.MustParseAddr("203.0.113.1")
	if flags&1 != 0 {
		addr = netip.MustParseAddr("2001:db8::1")
	}
	p := Plan{
		ReplaceOrigin:            flags&2 != 0,
		ReplaceSessionConnection: flags&4 != 0,
		ReplaceZeroAddress:       flags&8 != 0,
		OriginalSendrecv:         flags&16 != 0,
		StripExtmap:              flags&32 != 0,
		SessionAddr:              addr,
	}
	if flags&64 != 0 {
		p.LoopProtect = "0123456789ab"
	}
	for i, m := range s.Media() {
		mp := MediaPlan{
			Port:      10000 + 2*i,
			Addr:      addr,
			Direction: m.SenderDirection(),
			RTCPPort:  10001 + 2*i,
			RTCPMux:   m.RTCPMux(),
			FullRTCP:  flags&128 != 0,
			Ptime:     m.Ptime(),
			Mid:       m.Mid(),
		}
		if pts, err := m.PayloadTypes(); err == nil {
			mp.Codecs = pts
		}
		p.Media = append(p.Media, mp)
	}
	return p
}

// FuzzParseRewrite checks that Parse never panics, that Rewrite of
// whatever parses never panics, and that its output parses again with the
// same number of media. The last check is skipped when the input's last
// line has no terminator: generated text is then glued onto that line
// (rtpengine's behaviour, reproduced on purpose), which can break it.
func FuzzParseRewrite(f *testing.F) {
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.sdp"))
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
		f.Add(b, uint8(0xff))
	}
	f.Fuzz(func(t *testing.T, body []byte, flags uint8) {
		s, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("Parse error does not wrap ErrParse: %v", err)
			}
			return
		}
		plan := fuzzPlan(s, flags)
		out, err := Rewrite(s, plan)
		if err != nil {
			if errors.Is(err, ErrIncomplete) {
				return // m=message without any c= (ng fails such SDP earlier)
			}
			t.Fatalf("Rewrite: %v", err)
		}
		last := s.lines[len(s.lines)-1]
		if last.next == last.end {
			return
		}
		s2, err := Parse(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n in: %q\nout: %q", err, body, out)
		}
		if len(s2.Media()) != len(s.Media()) {
			t.Fatalf("media count %d -> %d\n in: %q\nout: %q", len(s.Media()), len(s2.Media()), body, out)
		}
		for i, m := range s.Media() {
			if m.isMessage() {
				continue
			}
			m2, mp := s2.Media()[i], plan.Media[i]
			want := mp.Port
			if m.Port() == 0 {
				want = 0
			}
			if m2.Port() != want {
				t.Fatalf("media %d: port %d, want %d\nout: %q", i+1, m2.Port(), want, out)
			}
			if !m.IsRTP() {
				continue
			}
			pts, err := m2.PayloadTypes()
			if err != nil || len(pts) != len(mp.Codecs) {
				t.Fatalf("media %d: payload types %v (%v), want %v\nout: %q", i+1, pts, err, mp.Codecs, out)
			}
			for j := range pts {
				if pts[j].PT != mp.Codecs[j].PT {
					t.Fatalf("media %d: payload types %v, want %v\nout: %q", i+1, pts, mp.Codecs, out)
				}
			}
		}
	})
}
