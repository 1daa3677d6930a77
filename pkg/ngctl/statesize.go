package ngctl

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/rtpkit/rtpkit/pkg/calls"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// DefaultStateMaxBytes is --state-max-bytes' default: far above what the
// calls of a large node take (a call's record is a few KiB: 100 000 calls
// stay under 512 MiB) and below the JetStream store of the embedded bus
// (1 GiB) and of the shipped nats-server configuration (4 GB), so new
// calls are refused with a clear error before the bus refuses writes.
const DefaultStateMaxBytes = 512 << 20

// stateSizeEvery is how often the size of node state is read.
const stateSizeEvery = 2 * time.Second

// guardStateSize reads the size of node state every stateSizeEvery until
// ctx ends. Above max bytes it makes the engine refuse new calls (an ng
// error naming the limit; calls in progress go on, and ended calls make
// room as their delete markers are purged); below 90 % of max it accepts
// them again. max 0 turns the guard off.
func guardStateSize(ctx context.Context, store *nodestate.Store, engine *calls.Engine, max int64, log *slog.Logger) {
	if max <= 0 {
		return
	}
	t := time.NewTicker(stateSizeEvery)
	defer t.Stop()
	full := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, stateSizeEvery)
		n, err := store.Bytes(rctx)
		cancel()
		if err != nil {
			continue // the bus is away: writes fail and are retried anyway
		}
		switch {
		case !full && n >= max:
			full = true
			engine.SetRefuseNew(fmt.Sprintf("Node state full (%d of %d bytes, --state-max-bytes): new calls refused", n, max))
			log.Error("node state full: new calls refused until ended calls make room", "bytes", n, "max_bytes", max)
		case full && n < max/10*9:
			full = false
			engine.SetRefuseNew("")
			log.Info("node state below its limit again: new calls accepted", "bytes", n, "max_bytes", max)
		}
	}
}
