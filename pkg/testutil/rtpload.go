package testutil

import (
	"context"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/rtppacket"
)

// RTPFlow is one direction of one call in an [RTPLoad]: packets go from
// Src to To and are read on Dst. Each packet carries the flow's index in
// the load as its SSRC and a sequence number; the send and arrival times
// of every packet are kept.
type RTPFlow struct {
	Name     string
	Src, Dst *net.UDPConn
	To       *net.UDPAddr

	mu      sync.Mutex
	sent    []time.Time // by sequence number
	arrived map[uint16]time.Time
}

// NewRTPFlow returns a flow from src to to, read on dst.
func NewRTPFlow(name string, src, dst *net.UDPConn, to *net.UDPAddr) *RTPFlow {
	return &RTPFlow{Name: name, Src: src, Dst: dst, To: to, arrived: map[uint16]time.Time{}}
}

// Times returns copies of the send times (index = sequence number) and of
// the arrival times by sequence number.
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
				f.mu.Lock()
				f.arrived[h.Seq] = now
				f.mu.Unlock()
			}
		}()
	}
	l.wg.Add(1)
	go func() { // one sender for all flows
		defer l.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		pkt := make([]byte, rtppacket.HeaderLen+160)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for i, f := range l.Flows {
				f.mu.Lock()
				seq := uint16(len(f.sent))
				f.sent = append(f.sent, time.Now())
				f.mu.Unlock()
				h := rtppacket.RTP{Seq: seq, Timestamp: uint32(seq) * 160, SSRC: uint32(i)}
				_ = h.WriteHeader(pkt) // cannot fail: pkt is longer than a header
				_, _ = f.Src.WriteToUDP(pkt, f.To)
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
