package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/rtppacket"
)

// RTPFlow is one direction of one call in an [RTPLoad]: packets go from
// Src to To and are read on Dst. Each packet carries the flow's index in
// the load as its SSRC, a sequence number (FirstSeq for the first packet,
// then one more each, wrapping) and a payload made from both, which the
// receiver checks; the send and arrival times of every packet are kept.
type RTPFlow struct {
	Name     string
	Src, Dst *net.UDPConn
	To       *net.UDPAddr
	// FirstSeq is the sequence number of the flow's first packet.
	FirstSeq uint16
	// Protect, if set, turns each packet into what is sent (SRTP
	// encryption, say); Unprotect, if set, turns what arrives back into
	// the packet, and its error makes the arrival a failure (see
	// Failures). Protect runs in the load's sender, Unprotect in the
	// flow's receiver: each in one goroutine. Set them before Start.
	Protect, Unprotect func(pkt []byte) ([]byte, error)

	mu       sync.Mutex
	sent     []time.Time // by packet number (sequence number − FirstSeq)
	arrived  map[uint16]time.Time
	failures []RTPFailure
}

// RTPFailure is a packet of a flow that arrived but not as sent: Unprotect
// refused it, or its header or payload differs.
type RTPFailure struct {
	Seq uint16
	At  time.Time
	Err error
}

func (f RTPFailure) String() string {
	return fmt.Sprintf("seq %d at %s: %v", f.Seq, f.At.Format("15:04:05.000"), f.Err)
}

// NewRTPFlow returns a flow from src to to, read on dst.
func NewRTPFlow(name string, src, dst *net.UDPConn, to *net.UDPAddr) *RTPFlow {
	return &RTPFlow{Name: name, Src: src, Dst: dst, To: to, arrived: map[uint16]time.Time{}}
}

// Times returns copies of the send times (index = packet number, the
// sequence number minus FirstSeq) and of the arrival times by packet
// number (uint16).
func (f *RTPFlow) Times() (sent []time.Time, arrived map[uint16]time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent), maps.Clone(f.arrived)
}

// Arrivals returns the arrival times in order.
func (f *RTPFlow) Arrivals() []time.Time {
	_, arrived := f.Times()
	out := slices.Collect(maps.Values(arrived))
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// Failures returns the packets that arrived but not as sent, in order of
// arrival.
func (f *RTPFlow) Failures() []RTPFailure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.failures)
}

// rtpPayloadLen is the payload length of the load's packets (20 ms of
// PCMU).
const rtpPayloadLen = 160

// fillPayload writes the payload of packet seq of flow ssrc.
func fillPayload(p []byte, ssrc uint32, seq uint16) {
	for i := range p {
		p[i] = byte(ssrc) ^ byte(seq) ^ byte(seq>>8) + byte(i)
	}
}

var errPacket = errors.New("not the packet sent")

// RTPLoad sends RTP on many flows at a steady rate: one sender for every
// flow on a ticker, one receiver per flow.
type RTPLoad struct {
	Flows []*RTPFlow

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// Start sends one 172-byte RTP packet on every flow each interval until
// Stop.
func (l *RTPLoad) Start(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for i, f := range l.Flows {
		l.wg.Add(1)
		go func() { // receiver
			defer l.wg.Done()
			buf := make([]byte, 2048)
			want := make([]byte, rtpPayloadLen)
			for {
				_ = f.Dst.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, _, err := f.Dst.ReadFromUDP(buf)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					continue
				}
				h, _, ok := rtppacket.Read(buf[:n])
				if !ok || h.SSRC != uint32(i) {
					continue
				}
				now := time.Now()
				pkt := buf[:n]
				if f.Unprotect != nil {
					pkt, err = f.Unprotect(pkt)
				}
				if err == nil {
					ph, payload, ok := rtppacket.Read(pkt)
					fillPayload(want, uint32(i), h.Seq)
					if !ok || ph != h || ph.Timestamp != uint32(ph.Seq)*160 || !bytes.Equal(payload, want) {
						err = errPacket
					}
				}
				f.mu.Lock()
				if err != nil {
					f.failures = append(f.failures, RTPFailure{Seq: h.Seq, At: now, Err: err})
				} else {
					f.arrived[h.Seq-f.FirstSeq] = now
				}
				f.mu.Unlock()
			}
		}()
	}
	l.wg.Add(1)
	go func() { // one sender for all flows
		defer l.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		pkt := make([]byte, rtppacket.HeaderLen+rtpPayloadLen)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for i, f := range l.Flows {
				f.mu.Lock()
				seq := f.FirstSeq + uint16(len(f.sent))
				f.sent = append(f.sent, time.Now())
				f.mu.Unlock()
				h := rtppacket.RTP{Seq: seq, Timestamp: uint32(seq) * 160, SSRC: uint32(i)}
				_ = h.WriteHeader(pkt) // cannot fail: pkt is longer than a header
				fillPayload(pkt[rtppacket.HeaderLen:], uint32(i), seq)
				wire := pkt
				if f.Protect != nil {
					var err error
					if wire, err = f.Protect(pkt); err != nil {
						continue // not sent: never arrives
					}
				}
				_, _ = f.Src.WriteToUDP(wire, f.To)
			}
		}
	}()
}

// Stop ends the load after giving the packets in flight drain to arrive.
func (l *RTPLoad) Stop(drain time.Duration) {
	l.stopOnce.Do(func() {
		time.Sleep(drain)
		l.cancel()
		l.wg.Wait()
	})
}
