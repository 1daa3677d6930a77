package calls

import (
	"math"
	"time"
)

// Statistics is what the statistics command reports (reference §1.10).
type Statistics struct {
	SessionsOwn, SessionsForeign int
	Uptime                       time.Duration
	Managed, Rejected            int64
	Timeout, SilentTimeout       int64
	FinalTimeout, OfferTimeout   int64
	Regular, Forced              int64
	AvgCallDuration              time.Duration
	TotalCallsDuration           time.Duration
	// TotalCallsDuration2 is the sum of the squared durations of the
	// ended calls, in s² (from millisecond durations, as rtpengine).
	TotalCallsDuration2 float64
	// CallsDurationStddev is the standard deviation of the ended calls'
	// durations.
	CallsDurationStddev time.Duration
}

// Stats gathers the engine's statistics.
func (e *Engine) Stats() Statistics {
	own, foreign := e.Counts()
	s := Statistics{
		SessionsOwn: own, SessionsForeign: foreign, Uptime: e.now().Sub(e.started),
		Managed: e.stats.managed.Load(), Rejected: e.stats.rejected.Load(),
		Timeout: e.stats.timeout.Load(), SilentTimeout: e.stats.silentTimeout.Load(),
		FinalTimeout: e.stats.finalTimeout.Load(), OfferTimeout: e.stats.offerTimeout.Load(),
		Regular: e.stats.regular.Load(), Forced: e.stats.forced.Load(),
		TotalCallsDuration: time.Duration(e.stats.durationSum.Load()) * time.Microsecond,
	}
	squares := float64(e.stats.durationSquares.Load()) // ms²
	s.TotalCallsDuration2 = squares / 1e6
	if n := e.stats.ended.Load(); n > 0 {
		s.AvgCallDuration = s.TotalCallsDuration / time.Duration(n)
		mean := float64(s.AvgCallDuration) / float64(time.Millisecond)
		variance := math.Abs(squares/float64(n) - mean*mean) // ms²
		s.CallsDurationStddev = time.Duration(math.Sqrt(variance) * float64(time.Millisecond))
	}
	return s
}

// TranscodedMedia counts the parties' medias that rtpkit sends
// transcoded (statistics' transcodedmedia).
func (e *Engine) TranscodedMedia() int {
	e.mu.Lock()
	ens := make([]*entry, 0, len(e.calls))
	for _, en := range e.calls {
		ens = append(ens, en)
	}
	e.mu.Unlock()
	n := 0
	for _, en := range ens {
		en.mu.Lock()
		if !en.c.gone {
			for _, l := range en.c.legs {
				for _, m := range l.medias {
					if m.transcode != nil {
						n++
					}
				}
			}
		}
		en.mu.Unlock()
	}
	return n
}
