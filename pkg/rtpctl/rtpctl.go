// Package rtpctl is the operator's and scripter's command line: it talks to
// a node over its bus, and `rtpctl up` runs a whole node in the foreground.
package rtpctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/busauth"
	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/version"
)

// Exit codes of rtpctl (operator-interface.md).
const (
	ExitOK          = 0
	ExitFailed      = 1 // the node answered with an error, or a call was not found
	ExitUsage       = 2
	ExitUnreachable = 3 // the node could not be reached
)

const topUsage = `Usage: rtpctl COMMAND [options]

Commands:
  up          run a whole node in the foreground (embedded bus, all daemons)
  status      list the node's daemons that answer on the bus
  bench       load tools: "bench setup" (offer/answer/delete cycles over ng),
              "bench media" (RTP through the proxy: pps, loss, latency, CPU per packet)
  keyspace    add|remove|list [N]: the Redis databases whose calls this node restores
  active      make every foreign call this node's own (moved in Redis)
  standby     make every own call foreign (this node stops writing them)
  list        sessions [all|own|foreign] | numsessions | totals: the node's calls and totals
  session     CALL-ID: one call's tags, medias, streams, endpoints and counters
  terminate   CALL-ID|all|own|foreign: end calls at once
  interfaces  ports used and free per local address
  get, set    timeout|silenttimeout|offertimeout|finaltimeout|deletedelay|maxsessions [VALUE]:
              ng-ctl's timers and session limit, read or changed at run time
  ng          JSON: send one ng command to ng-ctl, print the reply as JSON
  dtmf        --follow: print the DTMF events parties send as they end (rtp-fwd --dtmf-events)
  completion  bash: print a bash completion script
  bus-keys    make an installed node's bus keys and nats-server authorization (systemd/README.md)
  version     print rtpctl's version

Every command takes --help. Client commands take --nats-url, --node-id and --json.`

// Main runs rtpctl with args (without the program name) and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "rtpctl: missing command")
		fmt.Fprintln(stderr, topUsage)
		return ExitUsage
	}
	switch args[0] {
	case "up":
		return cmdUp(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(args[1:], stdout, stderr)
	case "keyspace":
		return cmdKeyspace(args[1:], stdout, stderr)
	case "active", "standby":
		return cmdOwnership(args[0], args[1:], stdout, stderr)
	case "list":
		return cmdList(args[1:], stdout, stderr)
	case "session":
		return cmdSession(args[1:], stdout, stderr)
	case "terminate":
		return cmdTerminate(args[1:], stdout, stderr)
	case "interfaces":
		return cmdInterfaces(args[1:], stdout, stderr)
	case "get", "set":
		return cmdGetSet(args[0], args[1:], stdout, stderr)
	case "ng":
		return cmdNG(args[1:], stdout, stderr)
	case "dtmf":
		return cmdDTMF(args[1:], stdout, stderr)
	case "completion":
		return cmdCompletion(args[1:], stdout, stderr)
	case "bus-keys":
		return cmdBusKeys(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "rtpctl %s\n", version.Version)
		return ExitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprintln(stdout, topUsage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "rtpctl: unknown command %q\n", args[0])
	fmt.Fprintln(stderr, topUsage)
	return ExitUsage
}

// clientOptions are the options of commands that talk to a running node.
type clientOptions struct {
	common cli.Common
	json   bool
	wait   time.Duration
}

func (o *clientOptions) register(fs *flag.FlagSet) {
	o.common.RegisterClientFlags(fs)
	fs.BoolVar(&o.json, "json", false, "print JSON instead of text")
	fs.DurationVar(&o.wait, "wait", 3*time.Second, "how long to wait for the node (--timeout on the command line, as before)")
}

// waitAlias turns the command-line option --timeout, the name --wait had
// before, into --wait. Only the command line knows the old name: in a config
// file shared by the node and in RTPKIT_TIMEOUT, "timeout" is ng-ctl's call
// timer in seconds, which a client must neither take as its own wait nor
// refuse as a malformed duration.
func waitAlias(a string) string {
	name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
	if name != "timeout" || !strings.HasPrefix(a, "-") {
		return a
	}
	if hasValue {
		return "--wait=" + value
	}
	return "--wait"
}

// clientCommand parses a client command's options and connects to the bus;
// on failure it returns the exit code to use.
func clientCommand(name, synopsis, summary string, args []string, stdout, stderr io.Writer) (*clientOptions, *bus.Conn, context.Context, context.CancelFunc, int) {
	return clientCommandWith(name, synopsis, summary, args, stdout, stderr, nil)
}

// clientCommandWith is clientCommand for a command with options of its
// own, which extra registers.
func clientCommandWith(name, synopsis, summary string, args []string, stdout, stderr io.Writer, extra func(*flag.FlagSet)) (*clientOptions, *bus.Conn, context.Context, context.CancelFunc, int) {
	var o clientOptions
	fs := cli.NewFlagSet("rtpctl " + name)
	o.register(fs)
	if extra != nil {
		extra(fs)
	}
	opts := make([]string, len(args))
	for i, a := range args {
		opts[i] = waitAlias(a)
	}
	if err := cli.Parse(fs, opts); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cli.PrintUsage(stdout, fs, synopsis, summary)
			return nil, nil, nil, nil, ExitOK
		}
		fmt.Fprintf(stderr, "rtpctl %s: %v\n", name, err)
		cli.PrintUsage(stderr, fs, synopsis, summary)
		return nil, nil, nil, nil, ExitUsage
	}
	if err := o.common.Validate(); err != nil {
		fmt.Fprintf(stderr, "rtpctl %s: %v\n", name, err)
		return nil, nil, nil, nil, ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.wait)
	busOpts := o.common.Bus
	busOpts.ConnectTimeout = o.wait
	operatorKey(&busOpts, o.common.NodeID)
	log := cli.NewLogger(stderr, o.common.LogFormat, o.common.LogLevel.Level)
	conn, err := bus.Connect(ctx, busOpts, o.common.NodeID, "rtpctl", log)
	if err != nil {
		cancel()
		fmt.Fprintf(stderr, "rtpctl %s: cannot reach node %q on its bus at %s: %v\n", name, o.common.NodeID, bus.RedactURL(o.common.Bus.URL), err)
		return nil, nil, nil, nil, ExitUnreachable
	}
	return &o, conn, ctx, cancel, -1
}

// operatorKey fills in the operator's nkey file when no credentials were
// given: the key `rtpctl up` of this user advertised for the bus address,
// or the installed node's (busauth.FindOperatorKey).
func operatorKey(o *bus.Options, node string) {
	if o.NkeyFile != "" || o.CredsFile != "" || strings.Contains(o.URL, "@") {
		return
	}
	o.NkeyFile = busauth.FindOperatorKey(o.URL, node)
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	o, conn, ctx, cancel, code := clientCommand("status", "rtpctl status [options]",
		"Lists the daemons of the node that answer on its bus.", args, stdout, stderr)
	if code >= 0 {
		return code
	}
	defer cancel()
	defer conn.Close()
	hellos, err := bus.Scatter(ctx, conn, api.NodePing, api.Empty{}, 300*time.Millisecond)
	if err != nil || len(hellos) == 0 {
		if err == nil {
			err = errors.New("no daemon answered")
		}
		fmt.Fprintf(stderr, "rtpctl status: node %q at %s: %v\n", o.common.NodeID, bus.RedactURL(o.common.Bus.URL), err)
		return ExitUnreachable
	}
	sort.Slice(hellos, func(i, j int) bool { return hellos[i].Daemon < hellos[j].Daemon })
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(hellos)
		return ExitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DAEMON\tPID\tVERSION\tUP")
	for _, h := range hellos {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", h.Daemon, h.PID, h.Version, time.Since(h.Started).Truncate(time.Second))
	}
	_ = tw.Flush()
	return ExitOK
}
