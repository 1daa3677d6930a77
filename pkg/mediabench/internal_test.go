package mediabench

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/sdes"
)

func TestParseStat(t *testing.T) {
	s := "1234 (a (weird) name) S 77 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0 100 0 0\n"
	ps, err := parseStat(s)
	if err != nil {
		t.Fatal(err)
	}
	if ps.ppid != 77 || ps.ticks != 281 {
		t.Fatalf("got %+v", ps)
	}
	if _, err := parseStat("1 (x) S 1"); err == nil {
		t.Fatal("short stat parsed")
	}
}

func TestTreeCPUSelf(t *testing.T) {
	// Burn a little CPU so that the count is above zero.
	x := 0
	for i := 0; i < 200_000_000; i++ {
		x ^= i
	}
	_ = x
	c, err := TreeCPU([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if c <= 0 {
		t.Fatalf("cpu %v", c)
	}
	if _, err := TreeCPU([]int{1 << 30}); err == nil {
		t.Fatal("no error for a missing pid")
	}
}

func TestReservoir(t *testing.T) {
	r := newReservoir(1000)
	for i := 1; i <= 100000; i++ {
		r.add(int64(i))
	}
	if len(r.samples) != 1000 || r.seen != 100000 {
		t.Fatalf("len %d seen %d", len(r.samples), r.seen)
	}
	p := r.percentiles(50, 99)
	if p[0] < 40000 || p[0] > 60000 || p[1] < 95000 {
		t.Fatalf("percentiles %v", p)
	}
	small := newReservoir(10)
	for i := 1; i <= 5; i++ {
		small.add(int64(i))
	}
	if p := small.percentiles(50); p[0] != 3 {
		t.Fatalf("median %v", p)
	}
}

// TestNoAllocsPerPacket: sending and receiving a packet allocate nothing,
// plain RTP or SRTP (the parties talk to each other directly here, each
// decrypting with the other's key).
func TestNoAllocsPerPacket(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates (make test runs this again without it)")
	}
	t.Run("RTP", func(t *testing.T) { testNoAllocs(t, "", "") })
	t.Run("SRTP", func(t *testing.T) { testNoAllocs(t, "AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM") })
}

func testNoAllocs(t *testing.T, suiteA, suiteB string) {
	a, err := newSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a.fd)
	b, err := newSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(b.fd)
	a.setDest(b.port)
	b.setDest(a.port)
	if suiteA != "" {
		a.enc, b.dec = testContexts(t, suiteA)
		b.enc, a.dec = testContexts(t, suiteB)
	}
	socks := []*socket{a, b}
	base := time.Now()
	var cnt counters
	snd := newSender(socks, 160, 42, base, &cnt)
	rcv, err := newReceiver(socks, 42, base, &cnt)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rcv.epfd)
	allocs := testing.AllocsPerRun(1000, func() {
		snd.round(phaseMeasure)
		rcv.drain(0)
		rcv.drain(1)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round", allocs)
	}
	if s, r := cnt.sent[0].Load()+cnt.sent[1].Load(), cnt.received[0].Load()+cnt.received[1].Load(); s == 0 || r != s {
		t.Errorf("sent %d received %d", s, r)
	}
	if cnt.sent[0].Load() != cnt.received[0].Load() {
		t.Errorf("A to B: sent %d received %d", cnt.sent[0].Load(), cnt.received[0].Load())
	}
	if f := cnt.srtpFailed.Load(); f != 0 {
		t.Errorf("%d SRTP failures", f)
	}
}

// testContexts are two contexts of one new key of suite: one to encrypt,
// one to decrypt.
func testContexts(t *testing.T, suite string) (enc, dec *srtp.Context) {
	t.Helper()
	k, err := sdes.New(1, sdes.SuiteByName(suite), nil)
	if err != nil {
		t.Fatal(err)
	}
	if enc, err = srtpContext(k); err != nil {
		t.Fatal(err)
	}
	if dec, err = srtpContext(k); err != nil {
		t.Fatal(err)
	}
	return enc, dec
}

// TestSRTPReceiver: an SRTP party counts a packet relayed in the clear, or
// encrypted with another key, as an SRTP failure, not as received.
func TestSRTPReceiver(t *testing.T) {
	a, err := newSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a.fd)
	b, err := newSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(b.fd)
	a.setDest(b.port)
	b.setDest(a.port)
	var cnt counters
	base := time.Now()
	rcv, err := newReceiver([]*socket{a, b}, 42, base, &cnt)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rcv.epfd)
	snd := newSender([]*socket{a, b}, 160, 42, base, &cnt)
	_, b.dec = testContexts(t, "AES_CM_128_HMAC_SHA1_80") // A sends plain
	snd.sendNext(phaseMeasure)
	a.enc, _ = testContexts(t, "AES_CM_128_HMAC_SHA1_80") // A sends with another key
	snd.next = 0
	snd.sendNext(phaseMeasure)
	time.Sleep(10 * time.Millisecond)
	rcv.drain(1)
	if r, f, c := cnt.received[0].Load(), cnt.srtpFailed.Load(), cnt.srtpClear.Load(); r != 0 || f != 2 || c != 1 {
		t.Errorf("received %d, SRTP failures %d (want 2), in the clear %d (want 1)", r, f, c)
	}
}

func TestPlanSRTP(t *testing.T) {
	for _, tt := range []struct {
		mode, suite, a, b string
		bad               bool
	}{
		{mode: "", suite: ""},
		{mode: SRTPFromRTP, suite: "", b: "AES_CM_128_HMAC_SHA1_80"},
		{mode: SRTPFromRTP, suite: "AEAD_AES_128_GCM", b: "AEAD_AES_128_GCM"},
		{mode: SRTPBoth, suite: "", a: "AES_CM_128_HMAC_SHA1_80", b: "AEAD_AES_128_GCM"},
		{mode: SRTPBoth, suite: "AEAD_AES_256_GCM", a: "AEAD_AES_256_GCM", b: "AES_CM_128_HMAC_SHA1_80"},
		{mode: "srtp", bad: true},
		{mode: SRTPBoth, suite: "F8_128_HMAC_SHA1_80", bad: true},
		{mode: SRTPFromRTP, suite: "AES_192_CM_HMAC_SHA1_80", bad: true},
	} {
		p, err := planSRTP(tt.mode, tt.suite)
		if (err != nil) != tt.bad || p.suiteA != tt.a || p.suiteB != tt.b {
			t.Errorf("%q %q: %+v, %v", tt.mode, tt.suite, p, err)
		}
	}
}

// TestClassify: the receiver counts only this run's packets and allocates
// nothing for anything else that arrives, malformed RTP included (the
// malformed cases are a good packet with header bits flipped on purpose).
func TestClassify(t *testing.T) {
	r := &receiver{tag: 42}
	pay := make([]byte, 160)
	binary.BigEndian.PutUint32(pay[payTag:], 42)
	pay[payPhase] = phaseMeasure
	binary.BigEndian.PutUint64(pay[paySendTime:], 12345)
	good := rtppacket.RTP{Seq: 7, Timestamp: 1120, SSRC: 9}.Packet(pay)
	flip := func(bits byte) []byte {
		b := append([]byte(nil), good...)
		b[0] ^= bits
		return b
	}
	otherRun := append([]byte(nil), good...)
	otherRun[rtppacket.HeaderLen+payTag]++
	tests := []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"this run's packet", good, true},
		{"another run's packet", otherRun, false},
		{"short payload", good[:rtppacket.HeaderLen+minPayload-1], false},
		{"header only", good[:rtppacket.HeaderLen], false},
		{"shorter than a header", good[:5], false},
		{"empty", nil, false},
		{"version 1", flip(0xc0), false},
		{"15 CSRCs", flip(0x0f), false},
		{"extension", flip(0x10), false},
		{"padding", flip(0x20), false}, // the last byte (0) is not a padding length
		{"receiver report", rtppacket.ReceiverReport(1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			phase, sent, ok := r.classify(tt.pkt)
			if ok != tt.ok || (ok && (phase != phaseMeasure || sent != 12345)) {
				t.Fatalf("classify: phase %d, sent %d, %v; want ok %v", phase, sent, ok, tt.ok)
			}
			if a := testing.AllocsPerRun(100, func() { r.classify(tt.pkt) }); a != 0 {
				t.Errorf("%v allocations", a)
			}
		})
	}
}
