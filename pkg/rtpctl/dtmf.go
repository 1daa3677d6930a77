package rtpctl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
)

// cmdDTMF follows the DTMF events the node's rtp-fwd workers publish
// (fwdapi.DTMFEvent): one line (or JSON object) per event, until
// interrupted, --count events or --for.
func cmdDTMF(args []string, stdout, stderr io.Writer) int {
	var follow bool
	var count int
	var span time.Duration
	o, conn, _, cancel, code := clientCommandWith("dtmf", "rtpctl dtmf --follow [--count N] [--for DURATION] [options]",
		"Prints the DTMF (RFC 4733) events parties send, as each ends: time, call, the sending party's tag, digit, "+
			"duration, volume, source. Needs rtp-fwd's --dtmf-events (or --dtmf-log-dest).", args, stdout, stderr,
		func(fs *flag.FlagSet) {
			fs.BoolVar(&follow, "follow", false, "keep printing events as they come (required)")
			fs.IntVar(&count, "count", 0, "stop after `N` events (0: no limit)")
			fs.DurationVar(&span, "for", 0, "stop after this `duration` (0: until interrupted)")
		})
	if code >= 0 {
		return code
	}
	cancel()
	defer conn.Close()
	if !follow {
		fmt.Fprintln(stderr, "rtpctl dtmf: --follow is required (events are printed as they come)")
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if span > 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, span)
		defer c()
	}
	var mu sync.Mutex
	seen := 0
	done := make(chan struct{})
	sub, err := bus.Subscribe(conn, fwdapi.DTMFEvent, func(_ string, d fwdapi.DTMF) {
		mu.Lock()
		defer mu.Unlock()
		if count > 0 && seen >= count {
			return
		}
		seen++
		if o.json {
			b, _ := json.Marshal(d)
			fmt.Fprintln(stdout, string(b))
		} else {
			fmt.Fprintf(stdout, "%s  call %s  tag %s  digit %s  event %d  %d ms  volume -%d dBm0  from %s\n",
				d.Time.Format(time.RFC3339Nano), d.CallID, d.SourceTag, d.Digit, d.Event, d.Duration, d.Volume, d.Source)
		}
		if count > 0 && seen == count {
			close(done)
		}
	})
	if err != nil {
		fmt.Fprintf(stderr, "rtpctl dtmf: %v\n", err)
		return ExitFailed
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := conn.NC.Flush(); err != nil {
		fmt.Fprintf(stderr, "rtpctl dtmf: %v\n", err)
		return ExitUnreachable
	}
	fmt.Fprintf(stderr, "rtpctl dtmf: following the DTMF events of node %q\n", o.common.NodeID)
	select {
	case <-ctx.Done():
	case <-done:
	}
	return ExitOK
}
