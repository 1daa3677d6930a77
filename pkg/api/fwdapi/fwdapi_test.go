package fwdapi_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
)

// TestMessageBound: the largest stream the report can carry (IPv6
// addresses with zones, every counter at its maximum) encodes within
// MaxStreamBytes, so a message of MaxStreamsPerMessage streams stays far
// below a 1 MiB max_payload.
func TestMessageBound(t *testing.T) {
	zone := strings.Repeat("z", 15) // IFNAMSIZ-1
	ap := netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%" + zone + "]:65535")
	big := fwdapi.StreamActivity{Local: ap, LastPacket: time.Date(2999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", -11*3600)),
		Packets: ^uint64(0), Bytes: ^uint64(0), Errors: ^uint64(0), Endpoint: ap, Confirmed: true, SSRC: ^uint32(0),
		KernelDrops: ^uint64(0), Offloaded: true, FastPathPackets: ^uint64(0)}
	one, err := json.Marshal(big)
	if err != nil {
		t.Fatal(err)
	}
	if len(one)+1 > fwdapi.MaxStreamBytes { // +1: the comma between streams
		t.Fatalf("a stream encodes in %d bytes, more than MaxStreamBytes %d", len(one)+1, fwdapi.MaxStreamBytes)
	}
	msg := fwdapi.Activity{Worker: strings.Repeat("w", 64), Full: true, Seq: ^uint64(0), Part: 1 << 30, Parts: 1 << 30}
	for range fwdapi.MaxStreamsPerMessage {
		msg.Streams = append(msg.Streams, big)
	}
	all, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) > 128<<10 {
		t.Fatalf("a full message encodes in %d bytes, more than 128 KiB", len(all))
	}
	t.Logf("largest stream %d bytes, largest message %d bytes", len(one), len(all))
}

// TestComplete: a report's last part, or a report of one message.
func TestComplete(t *testing.T) {
	for _, c := range []struct {
		part, parts int
		want        bool
	}{{0, 0, true}, {1, 3, false}, {3, 3, true}} {
		if got := (fwdapi.Activity{Part: c.part, Parts: c.parts}).Complete(); got != c.want {
			t.Errorf("part %d of %d: Complete %v, want %v", c.part, c.parts, got, c.want)
		}
	}
}
