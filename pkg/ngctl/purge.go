package ngctl

import (
	"context"
	"log/slog"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// Defaults of --state-purge-age and --state-purge-interval.
const (
	DefaultStatePurgeAge      = 10 * time.Minute
	DefaultStatePurgeInterval = time.Minute
)

// purgeMarkers removes, at once and then every interval until ctx ends,
// the delete markers of the node's bucket older than age (ng-ctl writes
// the calls, so it is the node's one purger). interval 0 turns it off. A
// run that fails is logged and tried again at the next tick.
func purgeMarkers(ctx context.Context, store *nodestate.Store, age, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		start := time.Now()
		n, err := store.PurgeDeletes(ctx, age)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("node state: delete markers not purged", "purged", n, "err", err)
		case n > 0:
			log.Info("node state: delete markers purged", "purged", n, "older_than", age, "took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
