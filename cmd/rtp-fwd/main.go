// Command rtp-fwd forwards RTP/RTCP between the legs of the node's calls.
package main

import (
	"context"
	"log/slog"

	"github.com/rtpkit/rtpkit/pkg/daemon"
	"github.com/rtpkit/rtpkit/pkg/rtpfwd"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

func main() {
	var cfg rtpfwd.Config
	daemon.Main("rtp-fwd", "rtp-fwd forwards RTP/RTCP between the legs of the node's calls.", &cfg, &cfg.Common, rtpfwd.Tuning, func(ctx context.Context, log *slog.Logger, wd *sdnotify.Watchdog) error {
		cfg.Watchdog = wd
		return rtpfwd.Run(ctx, cfg, log)
	})
}
