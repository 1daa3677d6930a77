// Command redis-sync mirrors the node's calls to Redis and restores its redundancy group's calls.
package main

import (
	"context"
	"log/slog"

	"github.com/rtpkit/rtpkit/pkg/daemon"
	"github.com/rtpkit/rtpkit/pkg/redissync"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

func main() {
	var cfg redissync.Config
	daemon.Main("redis-sync", "redis-sync mirrors the node's calls to Redis and restores its redundancy group's calls.", &cfg, &cfg.Common, redissync.Tuning, func(ctx context.Context, log *slog.Logger, wd *sdnotify.Watchdog) error {
		cfg.Watchdog = wd
		return redissync.Run(ctx, cfg, log)
	})
}
