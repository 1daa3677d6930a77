package fwd

import (
	"sync/atomic"
	"testing"

	"github.com/pion/srtp/v3"
)

// BenchmarkCryptRoundTrip is the cost of SRTP alone: one packet of 160
// bytes of payload protected and unprotected (no sockets).
func BenchmarkCryptRoundTrip(b *testing.B) {
	for _, p := range []srtp.ProtectionProfile{srtp.ProtectionProfileAes128CmHmacSha1_80, srtp.ProtectionProfileAeadAes128Gcm} {
		b.Run(p.String(), func(b *testing.B) {
			k, _, _ := testKey(b, p)
			var r1, r2 atomic.Uint32
			enc, _ := newCrypt(k, false, &r1)
			dec, _ := newCrypt(k, true, &r2)
			pkt := rtpPacket(1, 0xA, make([]byte, 160))
			out := make([]byte, 2048)
			buf := make([]byte, 2048)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				pkt[2], pkt[3] = byte(i>>8), byte(i)
				e, ok := enc.protect(out, pkt, false)
				if !ok {
					b.Fatal("protect")
				}
				n := copy(buf, e)
				if _, ok := dec.unprotect(buf[:n], false); !ok {
					b.Fatal("unprotect")
				}
			}
		})
	}
}
