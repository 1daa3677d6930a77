// Command portd owns the node's media sockets: per-interface port pools, leases to ng-ctl, sockets to rtp-fwd.
package main

import (
	"context"
	"log/slog"

	"github.com/rtpkit/rtpkit/pkg/daemon"
	"github.com/rtpkit/rtpkit/pkg/portd"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

func main() {
	var cfg portd.Config
	daemon.Main("portd", "portd owns the node's media sockets: per-interface port pools, leases to ng-ctl, sockets to rtp-fwd.", &cfg, &cfg.Common, portd.Tuning, func(ctx context.Context, log *slog.Logger, wd *sdnotify.Watchdog) error {
		cfg.Watchdog = wd
		return portd.Run(ctx, cfg, log)
	})
}
