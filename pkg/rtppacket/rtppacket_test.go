package rtppacket

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pion/rtcp"
)

// unhex decodes a hex string that may contain spaces.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The wire bytes here are the expected output, written out from RFC 3550
// §5.1 so that the builder is checked against the RFC and not only against
// pion's own parser.
func TestRTPMarshal(t *testing.T) {
	tests := []struct {
		name    string
		h       RTP
		payload string
		want    string
	}{
		{"PCMU", RTP{Seq: 1, Timestamp: 160, SSRC: 0xA1}, "ab",
			"80 00 0001 000000a0 000000a1 6162"},
		{"marker, dynamic PT", RTP{PayloadType: 101, Marker: true, Seq: 0xfffe, Timestamp: 0xdeadbeef, SSRC: 0xcafebabe}, "",
			"80 e5 fffe deadbeef cafebabe"},
		{"PT 127", RTP{PayloadType: 127, Seq: 0x1234, SSRC: 1}, "x",
			"80 7f 1234 00000000 00000001 78"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			if got := tt.h.Packet([]byte(tt.payload)); !bytes.Equal(got, want) {
				t.Fatalf("Packet: % x, want % x", got, want)
			}
			buf := bytes.Repeat([]byte{0xee}, 64)
			n, err := tt.h.MarshalTo(buf, []byte(tt.payload))
			if err != nil || !bytes.Equal(buf[:n], want) {
				t.Fatalf("MarshalTo: % x (%v), want % x", buf[:n], err, want)
			}
			if buf[n] != 0xee {
				t.Fatalf("MarshalTo wrote past the packet: % x", buf[:n+1])
			}
			// WriteHeader changes the header only.
			pkt := append([]byte(nil), want...)
			clear(pkt[:HeaderLen])
			if err := tt.h.WriteHeader(pkt); err != nil || !bytes.Equal(pkt, want) {
				t.Fatalf("WriteHeader: % x (%v), want % x", pkt, err, want)
			}
			h, payload, ok := Read(want)
			if !ok || h != tt.h || string(payload) != tt.payload {
				t.Fatalf("Read: %+v %q %v, want %+v %q", h, payload, ok, tt.h, tt.payload)
			}
		})
	}
}

func TestRTPShortBuffer(t *testing.T) {
	h := RTP{Seq: 1}
	if _, err := h.MarshalTo(make([]byte, HeaderLen+1), []byte("ab")); !errors.Is(err, io.ErrShortBuffer) {
		t.Errorf("MarshalTo into a short buffer: %v", err)
	}
	if err := h.WriteHeader(make([]byte, HeaderLen-1)); !errors.Is(err, io.ErrShortBuffer) {
		t.Errorf("WriteHeader into a short buffer: %v", err)
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		name    string
		pkt     string
		ok      bool
		h       RTP
		payload string
	}{
		{"header only", "80 08 0102 00000003 00000004", true, RTP{PayloadType: 8, Seq: 0x102, Timestamp: 3, SSRC: 4}, ""},
		{"padding", "a0 00 0001 00000000 00000001 6162 000003", true, RTP{Seq: 1, SSRC: 1}, "ab"},
		{"empty", "", false, RTP{}, ""},
		{"short", "80 00 0001 00000000 000000", false, RTP{}, ""},
		{"version 1", "40 00 0001 00000000 00000001", false, RTP{}, ""},
		{"version 0", "00 00 0001 00000000 00000001", false, RTP{}, ""},
		{"CSRC list", "81 00 0001 00000000 00000001 00000002", false, RTP{}, ""},
		{"CSRC count beyond the packet", "8f 00 0001 00000000 00000001", false, RTP{}, ""},
		{"extension", "90 00 0001 00000000 00000001 bede0001 10ff0000", false, RTP{}, ""},
		{"extension beyond the packet", "90 00 0001 00000000 00000001 bede00ff", false, RTP{}, ""},
		{"padding longer than the packet", "a0 00 0001 00000000 00000001 61 09", false, RTP{}, ""},
		{"padding length 0", "a0 00 0001 00000000 00000001 61 00", false, RTP{}, ""},
		{"empty receiver report", "80 c9 0001 00000001", false, RTP{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.pkt)
			h, payload, ok := Read(b)
			if ok != tt.ok || h != tt.h || string(payload) != tt.payload {
				t.Fatalf("Read(% x) = %+v %q %v, want %+v %q %v", b, h, payload, ok, tt.h, tt.payload, tt.ok)
			}
			if a := testing.AllocsPerRun(100, func() { Read(b) }); a != 0 {
				t.Errorf("Read allocates %v times", a)
			}
		})
	}
}

func TestNoAllocs(t *testing.T) {
	buf := make([]byte, 2048)
	payload := make([]byte, 160)
	h := RTP{PayloadType: 8, Marker: true, Seq: 7, Timestamp: 1120, SSRC: 9}
	rr := ReceiverReport(1)
	if a := testing.AllocsPerRun(100, func() {
		h.Seq++
		if _, err := h.MarshalTo(buf, payload); err != nil {
			t.Fatal(err)
		}
		if err := h.WriteHeader(buf); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := Read(buf[:HeaderLen+len(payload)]); !ok {
			t.Fatal("not read")
		}
		if !IsRTCP(rr) || IsRTCP(buf[:3]) {
			t.Fatal("IsRTCP")
		}
	}); a != 0 {
		t.Errorf("%v allocations per packet", a)
	}
}

func TestReceiverReport(t *testing.T) {
	tests := []struct {
		name    string
		ssrc    uint32
		reports []Report
		want    string
	}{
		{"empty", 0xA1, nil, "80 c9 0001 000000a1"},
		{"one block", 0xA, []Report{{SSRC: 0xfffffff5, FractionLost: 0x10, TotalLost: 3, LastSequenceNumber: 2, Jitter: 0x12345678, LastSenderReport: 5, Delay: 6}},
			"81 c9 0007 0000000a fffffff5 10 000003 00000002 12345678 00000005 00000006"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			got := ReceiverReport(tt.ssrc, tt.reports...)
			if !bytes.Equal(got, want) {
				t.Fatalf("% x, want % x", got, want)
			}
			if !IsRTCP(got) {
				t.Fatal("not RTCP")
			}
			pkts, err := rtcp.Unmarshal(got)
			if err != nil || len(pkts) != 1 {
				t.Fatalf("pion reads %v, %v", pkts, err)
			}
			rr, ok := pkts[0].(*rtcp.ReceiverReport)
			if !ok || rr.SSRC != tt.ssrc || len(rr.Reports) != len(tt.reports) || (len(rr.Reports) > 0 && rr.Reports[0] != tt.reports[0]) {
				t.Fatalf("pion reads %+v", pkts[0])
			}
		})
	}
}

func TestIsRTCP(t *testing.T) {
	tests := []struct {
		name string
		pkt  string
		want bool
	}{
		{"receiver report", "80 c9 0001 00000001", true},
		{"sender report", "80 c8 0006 00000001 00000000 00000000 00000000 00000000 00000000", true},
		{"bye", "81 cb 0001 00000001", true},
		{"type 192", "80 c0 0000", true},
		{"type 223", "80 df 0000", true},
		{"type 191", "80 bf 0000", false},
		{"type 224", "80 e0 0000", false},
		{"RTP", "80 00 0001 00000000 00000001", false},
		{"RTP, marker, PT 101", "80 e5 0001 00000000 00000001", false},
		{"version 1", "40 c9 0001 00000001", false},
		{"shorter than its length", "80 c9 0002 00000001", false},
		{"shorter than a header", "80 c9 00", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsRTCP(unhex(t, tt.pkt)); got != tt.want {
				t.Fatalf("IsRTCP = %v, want %v", got, tt.want)
			}
		})
	}
}
