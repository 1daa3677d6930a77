package calls

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/codec/names"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// TestTranscodeRecord: an offer with transcode adds the codec, an answer
// with only it gives the offerer its own codec, and each party's record
// names the codec it is sent by transcoding.
func TestTranscodeRecord(t *testing.T) {
	codecName := "PCMA"
	if names.Supported("opus") {
		codecName = "opus"
	}
	store := &memStore{saved: map[string]nodestate.Call{}}
	e := newTestEngine(newFakePorts())
	e.cfg.Store = store
	ctx := context.Background()
	o := req("offer", "tc", "A", "", "v=0\r\no=- 1 1 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
	o.Codec.Transcode = []string{codecName}
	sdpB, err := e.Offer(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	pt, rtpmap := "8", "a=rtpmap:8 PCMA/8000"
	if codecName == "opus" {
		pt, rtpmap = "96", "a=rtpmap:96 opus/48000/2"
	}
	want := "RTP/AVP 0 " + pt + " 101\r\n"
	if codecName == "opus" { // and telephone-event at Opus's rate, as rtpengine adds it
		want = "RTP/AVP 0 96 97 101\r\n"
	}
	if !strings.Contains(string(sdpB), want) || !strings.Contains(string(sdpB), rtpmap) {
		t.Fatalf("offer to B:\n%s", sdpB)
	}
	ans := "v=0\r\no=- 2 2 IN IP4 203.0.113.50\r\ns=-\r\nc=IN IP4 203.0.113.50\r\nt=0 0\r\nm=audio 7000 RTP/AVP " + pt + " 101\r\n" + rtpmap + "\r\na=rtpmap:101 telephone-event/8000\r\n"
	sdpA, err := e.Answer(ctx, req("answer", "tc", "A", "B", ans))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sdpA), "RTP/AVP 0 101\r\n") {
		t.Fatalf("answer to A:\n%s", sdpA)
	}
	if n := e.TranscodedMedia(); n != 2 {
		t.Errorf("TranscodedMedia %d, want 2", n)
	}
	rec := store.saved["tc"]
	for _, l := range rec.Legs {
		m := l.Medias[0]
		want := map[string]string{"A": "PCMU", "B": codecName}[l.Tag]
		if m.Transcode == nil || !strings.EqualFold(m.Transcode.Encoding, want) {
			t.Errorf("leg %s is sent %+v, want %s", l.Tag, m.Transcode, want)
		}
	}
}

// TestTranscodeRefused: a codec this build does not transcode is refused
// with a clear error, and nothing is left of the call.
func TestTranscodeRefused(t *testing.T) {
	store := &memStore{saved: map[string]nodestate.Call{}}
	ports := newFakePorts()
	e := newTestEngine(ports)
	e.cfg.Store = store
	refused := []string{"AMR-WB"}
	if !names.Libraries {
		refused = append(refused, "opus", "G722")
	}
	for _, c := range refused {
		o := req("offer", "tr-"+c, "A", "", offerSDP)
		o.Codec.Transcode = []string{"PCMA", c}
		_, err := e.Offer(context.Background(), o)
		if err == nil || !strings.Contains(Reason(err), "Transcoding to "+c+" is not supported") {
			t.Fatalf("transcode %s: %v", c, err)
		}
		if !names.Libraries && !strings.Contains(Reason(err), "without the codec libraries") {
			t.Fatalf("transcode %s: %q does not say why", c, Reason(err))
		}
	}
	if own, _ := e.Counts(); own != 0 || ports.taken != 0 || len(store.saved) != 0 {
		t.Fatalf("left behind: %d calls, %d pairs taken, %d records", own, ports.taken, len(store.saved))
	}
}

// TestInbandDTMFPlan: with always-transcode, an offerer with
// telephone-event answered by a party without it keeps telephone-event,
// and the answerer's record says it is sent PCMU (the offerer's events
// as tones); without the flag the offerer loses telephone-event, as in
// rtpengine, and nothing is transcoded.
func TestInbandDTMFPlan(t *testing.T) {
	for _, always := range []bool{true, false} {
		store := &memStore{saved: map[string]nodestate.Call{}}
		e := newTestEngine(newFakePorts())
		e.cfg.Store = store
		ctx := context.Background()
		o := req("offer", "ib", "A", "", "v=0\r\no=- 1 1 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
		o.Flags["always-transcode"] = always
		if _, err := e.Offer(ctx, o); err != nil {
			t.Fatal(err)
		}
		sdpA, err := e.Answer(ctx, req("answer", "ib", "A", "B", "v=0\r\no=- 2 2 IN IP4 203.0.113.50\r\ns=-\r\nc=IN IP4 203.0.113.50\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := "RTP/AVP 0\r\n"
		if always {
			want = "RTP/AVP 0 101\r\n"
		}
		if !strings.Contains(string(sdpA), want) {
			t.Fatalf("always-transcode %v: answer to A:\n%s", always, sdpA)
		}
		for _, l := range store.saved["ib"].Legs {
			got := l.Medias[0].Transcode
			if wantTC := always && l.Tag == "B"; (got != nil) != wantTC || got != nil && got.Encoding != "PCMU" {
				t.Errorf("always-transcode %v: leg %s is sent %+v", always, l.Tag, got)
			}
		}
	}
}

// TestPtimeRepacketize: ptime in an offer gives its receiver that ptime,
// the offerer its own back (no ptime-reverse), whatever the answer's
// a=ptime; both parties' media are marked for repacketizing in their
// codec.
func TestPtimeRepacketize(t *testing.T) {
	store := &memStore{saved: map[string]nodestate.Call{}}
	e := newTestEngine(newFakePorts())
	e.cfg.Store = store
	ctx := context.Background()
	o := req("offer", "pt", "A", "", "v=0\r\no=- 1 1 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=ptime:50\r\n")
	o.Ptime = 30
	sdpB, err := e.Offer(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sdpB), "a=ptime:30\r\n") || strings.Contains(string(sdpB), "a=ptime:50") {
		t.Fatalf("offer to B:\n%s", sdpB)
	}
	sdpA, err := e.Answer(ctx, req("answer", "pt", "A", "B", "v=0\r\no=- 2 2 IN IP4 203.0.113.50\r\ns=-\r\nc=IN IP4 203.0.113.50\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=ptime:40\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sdpA), "a=ptime:50\r\n") || strings.Contains(string(sdpA), "a=ptime:40") {
		t.Fatalf("answer to A:\n%s", sdpA)
	}
	for _, l := range store.saved["pt"].Legs {
		m := l.Medias[0]
		want := map[string]int{"A": 50, "B": 30}[l.Tag]
		if m.Ptime != want || m.Transcode == nil || m.Transcode.Encoding != "PCMU" || !slices.Contains(m.Flags, nodestate.FlagRepacketize) {
			t.Errorf("leg %s: ptime %d (want %d), sent %+v, flags %v", l.Tag, m.Ptime, want, m.Transcode, m.Flags)
		}
	}
}

// TestAcceptConsume: codec accept keeps PCMU in the offer, consume hides
// it; either way an answer with PCMA only gives the offerer PCMU, and
// both directions are transcoded.
func TestAcceptConsume(t *testing.T) {
	for _, consume := range []bool{false, true} {
		store := &memStore{saved: map[string]nodestate.Call{}}
		e := newTestEngine(newFakePorts())
		e.cfg.Store = store
		ctx := context.Background()
		o := req("offer", "ac", "A", "", "v=0\r\no=- 1 1 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8\r\n")
		want := "RTP/AVP 0 8\r\n"
		if consume {
			o.Codec.Consume = []string{"PCMU"}
			want = "RTP/AVP 8\r\n"
		} else {
			o.Codec.Accept = []string{"PCMU"}
		}
		sdpB, err := e.Offer(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(sdpB), want) {
			t.Fatalf("consume %v: offer to B:\n%s", consume, sdpB)
		}
		sdpA, err := e.Answer(ctx, req("answer", "ac", "A", "B", "v=0\r\no=- 2 2 IN IP4 203.0.113.50\r\ns=-\r\nc=IN IP4 203.0.113.50\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(sdpA), "RTP/AVP 0\r\n") {
			t.Fatalf("consume %v: answer to A:\n%s", consume, sdpA)
		}
		for _, l := range store.saved["ac"].Legs {
			wantEnc := map[string]string{"A": "PCMU", "B": "PCMA"}[l.Tag]
			if tc := l.Medias[0].Transcode; tc == nil || tc.Encoding != wantEnc {
				t.Errorf("consume %v: leg %s is sent %+v, want %s", consume, l.Tag, tc, wantEnc)
			}
		}
	}
}

// TestWithCodecSet: codec set gives the Opus rtpkit sends an offerer the
// bitrate named for its format, and nothing else.
func TestWithCodecSet(t *testing.T) {
	opus := &nodestate.PayloadType{PT: 96, Encoding: "opus", Clock: 48000, Params: "2", Fmtp: "useinbandfec=1"}
	got := withCodecSet(opus, []string{"opus/48000/1/16000", "opus/48000/2/40000"})
	if got.Fmtp != "useinbandfec=1;maxaveragebitrate=40000" || opus.Fmtp != "useinbandfec=1" {
		t.Fatalf("fmtp %q (original %q)", got.Fmtp, opus.Fmtp)
	}
	if got := withCodecSet(opus, []string{"opus/48000/1/16000"}); got != opus {
		t.Fatalf("a set entry for mono Opus changed stereo Opus: %+v", got)
	}
	pcmu := &nodestate.PayloadType{PT: 0, Encoding: "PCMU", Clock: 8000}
	if got := withCodecSet(pcmu, []string{"PCMU/8000/1/64000"}); got != pcmu {
		t.Fatalf("PCMU changed: %+v", got)
	}
}
