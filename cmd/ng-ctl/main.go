// Command ng-ctl speaks rtpengine's ng control protocol and rewrites SDP.
package main

import (
	"context"
	"log/slog"

	"github.com/rtpkit/rtpkit/pkg/daemon"
	"github.com/rtpkit/rtpkit/pkg/ngctl"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

func main() {
	var cfg ngctl.Config
	daemon.Main("ng-ctl", "ng-ctl speaks rtpengine's ng control protocol and rewrites SDP.", &cfg, &cfg.Common, ngctl.Tuning, func(ctx context.Context, log *slog.Logger, wd *sdnotify.Watchdog) error {
		cfg.Watchdog = wd
		return ngctl.Run(ctx, cfg, log)
	})
}
