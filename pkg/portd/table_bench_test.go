package portd

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/ifspec"
	"github.com/rtpkit/rtpkit/pkg/mediasock"
)

// BenchmarkLeaseRelease measures portd's allocation path: take a pair from
// the pool, bind its two sockets (FREEBIND, TOS, RXQ_OVFL as in production),
// then release it (close both, ports into the pool). Reported as pairs/s.
func BenchmarkLeaseRelease(b *testing.B) {
	set, err := ifspec.New(ifspec.Config{Interfaces: []string{"127.0.0.1"}, PortMin: 41000, PortMax: 49999})
	if err != nil {
		b.Fatal(err)
	}
	opts := mediasock.Options{FreeBind: true, TOS: mediasock.TOSExpeditedForwarding, RxqOvfl: true}
	tab, err := newTable(set, opts, 0, 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer tab.closeAll()
	// Keep the pool half full, as on a busy node.
	if _, _, err := tab.lease("warm", "", 4, 1024, false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pairs, _, err := tab.lease("bench", "", 4, 1, false)
		if err != nil {
			b.Fatal(err)
		}
		if n := tab.returnLeases("bench", []netip.AddrPort{pairs[0].RTP}, false); len(n) != 1 {
			b.Fatal("not returned")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}
