package rtpctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/syncapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
)

// cmdKeyspace is rtpengine-ctl's ksadd / ksrm / kslist: the Redis
// databases (partitions) whose calls this node restores as foreign.
func cmdKeyspace(args []string, stdout, stderr io.Writer) int {
	const synopsis = "rtpctl keyspace add|remove|list [N] [options]"
	const summary = "Changes or lists the Redis databases this node follows (restores as foreign calls).\n" +
		"add also loads the calls already in N; remove drops N's foreign calls and their sockets."
	req := syncapi.KeyspaceRequest{Op: "list"}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		req.Op, args = args[0], args[1:]
		switch req.Op {
		case "add", "remove", "rm":
			if req.Op == "rm" {
				req.Op = "remove"
			}
			if len(args) == 0 || strings.HasPrefix(args[0], "-") {
				fmt.Fprintf(stderr, "rtpctl keyspace %s: missing database number\nUsage: %s\n", req.Op, synopsis)
				return ExitUsage
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 0 {
				fmt.Fprintf(stderr, "rtpctl keyspace %s: %q is not a database number\n", req.Op, args[0])
				return ExitUsage
			}
			req.DB, args = n, args[1:]
		case "list":
		default:
			fmt.Fprintf(stderr, "rtpctl keyspace: unknown operation %q (add, remove, list)\nUsage: %s\n", req.Op, synopsis)
			return ExitUsage
		}
	}
	o, conn, ctx, cancel, code := clientCommand("keyspace", synopsis, summary, args, stdout, stderr)
	if code >= 0 {
		return code
	}
	defer cancel()
	defer conn.Close()
	rep, err := bus.Request(ctx, conn, syncapi.KeyspaceEndpoint, req)
	if err != nil {
		return requestFailed(stderr, "keyspace", err)
	}
	if o.json {
		return printJSON(stdout, rep)
	}
	switch {
	case req.Op == "add" && rep.Changed:
		fmt.Fprintf(stdout, "Now following keyspace %d.\n", req.DB)
	case req.Op == "add":
		fmt.Fprintf(stdout, "Keyspace %d was already followed.\n", req.DB)
	case req.Op == "remove" && rep.Changed:
		fmt.Fprintf(stdout, "Stopped following keyspace %d; %d foreign calls removed.\n", req.DB, rep.Removed)
	case req.Op == "remove":
		fmt.Fprintf(stdout, "Keyspace %d was not followed.\n", req.DB)
	}
	if len(rep.DBs) == 0 {
		fmt.Fprintln(stdout, "Followed keyspaces: none")
		return ExitOK
	}
	dbs := make([]string, len(rep.DBs))
	for i, db := range rep.DBs {
		dbs[i] = strconv.Itoa(db)
	}
	fmt.Fprintf(stdout, "Followed keyspaces: %s\n", strings.Join(dbs, " "))
	return ExitOK
}

// cmdOwnership is rtpengine-ctl's active / standby.
func cmdOwnership(which string, args []string, stdout, stderr io.Writer) int {
	summary := "Makes every foreign call this node's own: it writes them to its Redis database and\n" +
		"removes them from their old owner's, in one step per call."
	endpoint := syncapi.ActiveEndpoint
	if which == "standby" {
		summary = "Makes every own call foreign: this node stops writing them to Redis."
		endpoint = syncapi.StandbyEndpoint
	}
	o, conn, ctx, cancel, code := clientCommand(which, "rtpctl "+which+" [options]", summary, args, stdout, stderr)
	if code >= 0 {
		return code
	}
	defer cancel()
	defer conn.Close()
	rep, err := bus.Request(ctx, conn, endpoint, api.Empty{})
	if err != nil {
		return requestFailed(stderr, which, err)
	}
	if o.json {
		return printJSON(stdout, rep)
	}
	if which == "active" {
		fmt.Fprintf(stdout, "%d foreign calls are now own.\n", rep.Calls)
	} else {
		fmt.Fprintf(stdout, "%d own calls are now foreign.\n", rep.Calls)
	}
	return ExitOK
}

// requestFailed reports a failed request and returns the exit code.
func requestFailed(stderr io.Writer, name string, err error) int {
	if errors.Is(err, bus.ErrNoResponders) {
		fmt.Fprintf(stderr, "rtpctl %s: redis-sync is not running on this node\n", name)
		return ExitUnreachable
	}
	fmt.Fprintf(stderr, "rtpctl %s: %v\n", name, err)
	return ExitFailed
}

func printJSON(w io.Writer, v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ExitFailed
	}
	fmt.Fprintln(w, string(b))
	return ExitOK
}
