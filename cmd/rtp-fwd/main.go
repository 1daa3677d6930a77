// Command rtp-fwd forwards RTP/RTCP between the legs of the node's calls.
package main

import (
	"context"
	"log/slog"

	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/rtpfwd"
)

func main() {
	var cfg rtpfwd.Config
	cli.Main("rtp-fwd", "rtp-fwd forwards RTP/RTCP between the legs of the node's calls.", &cfg, &cfg.Common, func(ctx context.Context, log *slog.Logger) error {
		return rtpfwd.Run(ctx, cfg, log)
	})
}
