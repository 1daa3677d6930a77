package calls

import (
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
	// Relayed counters come from the forwarding workers (zero until they
	// publish them).
	RelayedPackets, RelayedBytes, RelayedErrors uint64
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
	if n := e.stats.ended.Load(); n > 0 {
		s.AvgCallDuration = s.TotalCallsDuration / time.Duration(n)
	}
	return s
}
