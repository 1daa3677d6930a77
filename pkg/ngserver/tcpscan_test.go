package ngserver

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// bigBencode is a bencode document of about size bytes made of many small
// tokens (a list of integers), so that a scanner examines every byte.
func bigBencode(size int) string {
	var b strings.Builder
	b.WriteString("d7:command4:ping4:listl")
	for i := 0; b.Len() < size-2; i++ {
		fmt.Fprintf(&b, "i%de", i%1000)
	}
	b.WriteString("ee")
	return b.String()
}

// bigJSON is a JSON ng document of about size bytes with many small tokens.
func bigJSON(size int) string {
	var b strings.Builder
	b.WriteString(`{"command":"ping","list":[`)
	for i := 0; b.Len() < size-4; i++ {
		fmt.Fprintf(&b, `"s%d",%d,`, i%1000, i%7)
	}
	b.WriteString(`true]}`)
	return b.String()
}

// TestTCPLargeMessageInPiecesScannedOnce sends one large message over a
// real TCP connection in small writes: the framer must examine each byte a
// bounded number of times, not rescan the incomplete message after every
// read (finding 24.9c).
func TestTCPLargeMessageInPiecesScannedOnce(t *testing.T) {
	const size = 256 << 10
	for _, tc := range []struct {
		name  string
		doc   string
		reply string
		piece int
	}{
		{"bencode 100-byte writes", bigBencode(size), "", 100},
		{"json 100-byte writes", bigJSON(size), `{"result":"ok"}`, 100},
		{"bencode 1000-byte writes", bigBencode(size), "", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan int, 1)
			reads := make(chan int, 1)
			f := &fakeEngine{}
			s := startServer(t, Config{TCP: []string{"127.0.0.1:0"},
				framerDone: func(n int) { done <- n },
				tcpRead: func(n int) {
					if n > 0 {
						reads <- n
					}
				}}, f)
			c := dialTCP(t, s.Addrs().TCP[0])
			msg := "k1 " + tc.doc
			// Each piece is read by the server before the next is sent, so
			// that every read returns one piece.
			for i := 0; i < len(msg); i += tc.piece {
				p := msg[i:min(i+tc.piece, len(msg))]
				if _, err := c.Write([]byte(p)); err != nil {
					t.Fatalf("write: %v", err)
				}
				for got := 0; got < len(p); {
					select {
					case n := <-reads:
						got += n
					case <-time.After(replyWait):
						t.Fatalf("server did not read piece at %d", i)
					}
				}
			}
			want := tc.reply
			if want == "" {
				want = echoReply(tc.doc)
			}
			readExactly(t, c, "k1 "+want)
			c.Close()
			var examined int
			select {
			case examined = <-done:
			case <-time.After(replyWait):
				t.Fatal("connection not closed by the server")
			}
			t.Logf("message of %d bytes in %d-byte writes: framer examined %d bytes (%.1f per byte)",
				len(msg), tc.piece, examined, float64(examined)/float64(len(msg)))
			if limit := 3*len(msg) + 4096; examined > limit {
				t.Errorf("framer examined %d bytes for a %d-byte message, more than %d", examined, len(msg), limit)
			}
		})
	}
}
