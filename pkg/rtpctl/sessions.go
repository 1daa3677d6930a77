package rtpctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
)

var listCmd = clientCmd{"list", "rtpctl list sessions [all|own|foreign|CALL-ID] | numsessions | totals [options]",
	"rtpengine-ctl's list: the node's calls (own ones made here, foreign ones restored from the\n" +
		"redundancy group), how many there are, and the totals since ng-ctl started.\n" +
		"`list interfaces` and `list timeout` (and the other settings) are `interfaces` and `get`."}

// cmdList is rtpengine-ctl's list sessions / numsessions / totals.
func cmdList(args []string, stdout, stderr io.Writer) int {
	pos, opts, help := listCmd.split(args)
	if help {
		return listCmd.help(opts, stdout, stderr)
	}
	if len(pos) == 0 {
		return listCmd.usage(stderr, "missing what to list (sessions, numsessions, totals)")
	}
	what, rest := pos[0], pos[1:]
	switch {
	case what == "sessions":
		which := ngapi.WhichAll
		if len(rest) > 1 {
			return listCmd.usage(stderr, "unexpected argument %q", rest[1])
		}
		if len(rest) == 1 {
			switch rest[0] {
			case ngapi.WhichAll, ngapi.WhichOwn, ngapi.WhichForeign:
				which = rest[0]
			default: // rtpengine-ctl's `list sessions CALL-ID`
				return cmdSession(append(rest[:1:1], opts...), stdout, stderr)
			}
		}
		return listSessions(which, opts, stdout, stderr)
	case what == "numsessions" || what == "totals":
		if len(rest) > 0 {
			return listCmd.usage(stderr, "unexpected argument %q", rest[0])
		}
		return listStatistics(what, opts, stdout, stderr)
	case what == "interfaces":
		return cmdInterfaces(append(rest, opts...), stdout, stderr)
	case settingName(what) != "":
		return cmdGetSet("get", append(pos, opts...), stdout, stderr)
	}
	return listCmd.usage(stderr, "cannot list %q (sessions, numsessions, totals)", what)
}

func listSessions(which string, opts []string, stdout, stderr io.Writer) int {
	o, conn, ctx, cancel, code := listCmd.start(opts, stdout, stderr)
	if code >= 0 {
		return code
	}
	defer cancel()
	defer conn.Close()
	rep, err := bus.Request(ctx, conn, ngapi.SessionsEndpoint, ngapi.SessionsRequest{Which: which})
	if err != nil {
		return listCmd.failed(stderr, o, "ng-ctl", err)
	}
	if o.json {
		return printJSON(stdout, rep)
	}
	if len(rep.Sessions) == 0 {
		switch which {
		case ngapi.WhichOwn:
			fmt.Fprintln(stdout, "No own sessions on this media relay.")
		case ngapi.WhichForeign:
			fmt.Fprintln(stdout, "No foreign sessions on this media relay.")
		default:
			fmt.Fprintln(stdout, "No sessions on this media relay.")
		}
		return ExitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL-ID\tOWNER\tFOREIGN\tCREATED\tLAST SIGNAL\tDELETION MARK\tKEYSPACE\tTAGS")
	for _, s := range rep.Sessions {
		mark := "no"
		if !s.DeleteAt.IsZero() {
			mark = clock(s.DeleteAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Owner, yesNo(s.Foreign), clock(s.Created), clock(s.LastSignal),
			mark, dash(s.Partition), tagList(s.Tags))
	}
	_ = tw.Flush()
	return ExitOK
}

func tagList(tags []string) string {
	if len(tags) == 0 {
		return "-"
	}
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t
		if t == "" {
			out[i] = "(untagged)"
		}
	}
	return strings.Join(out, " ")
}

var sessionCmd = clientCmd{"session", "rtpctl session CALL-ID [options]",
	"Shows one call (rtpengine-ctl's `list sessions CALL-ID`): owner, times, deletion mark, and per\n" +
		"party (tag) and media its streams: our local socket, the address we advertise, the peer's\n" +
		"endpoint (learned from its packets, else signalled), packets, bytes, errors, last packet."}

// queryStream and queryTag are the parts of ng query's reply (reference §1.9) that
// session prints.
type queryStream struct {
	LocalPort  int        `json:"local port"`
	LocalAddr  string     `json:"local address"`
	Endpoint   ngEndpoint `json:"endpoint"`
	Advertised ngEndpoint `json:"advertised endpoint"`
	LastPacket int64      `json:"last packet"`
	// CryptoSuite is the SRTP suite of an SRTP stream (never a key).
	CryptoSuite string     `json:"crypto suite"`
	Flags       []string   `json:"flags"`
	Stats       ngCounters `json:"stats"`
}

type ngEndpoint struct {
	Family  string `json:"family"`
	Address string `json:"address"`
	Port    int    `json:"port"`
}

func (e ngEndpoint) String() string {
	if e.Address == "" {
		return "-"
	}
	if strings.Contains(e.Address, ":") {
		return "[" + e.Address + "]:" + strconv.Itoa(e.Port)
	}
	return e.Address + ":" + strconv.Itoa(e.Port)
}

type ngCounters struct {
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	Errors       uint64 `json:"errors"`
	KernelDrops  uint64 `json:"kernel drops"`
	SRTPFailures uint64 `json:"SRTP failures"`
}

type queryTag struct {
	Tag           string `json:"tag"`
	Label         string `json:"label"`
	Created       int64  `json:"created"`
	Subscriptions []struct {
		Tag string `json:"tag"`
	} `json:"subscriptions"`
	Medias []struct {
		Index    int           `json:"index"`
		Type     string        `json:"type"`
		Protocol string        `json:"protocol"`
		Streams  []queryStream `json:"streams"`
		Flags    []string      `json:"flags"`
	} `json:"medias"`
}

// sessionOutput is `rtpctl session --json`: the call as ng-ctl lists it
// (null if it did not) and ng query's reply as it came.
type sessionOutput struct {
	Session *ngapi.Session  `json:"session"`
	Query   json.RawMessage `json:"query"`
}

// cmdSession shows one call: ng query, plus the call's entry in ng-ctl's
// session list for what query does not say (owner, foreign, deletion).
func cmdSession(args []string, stdout, stderr io.Writer) int {
	pos, opts, help := sessionCmd.split(args)
	if help {
		return sessionCmd.help(opts, stdout, stderr)
	}
	if len(pos) != 1 || pos[0] == "" {
		if len(pos) == 0 {
			return sessionCmd.usage(stderr, "missing CALL-ID")
		}
		return sessionCmd.usage(stderr, "one CALL-ID, got %d arguments", len(pos))
	}
	id := pos[0]
	o, conn, ctx, cancel, code := sessionCmd.start(opts, stdout, stderr)
	if code >= 0 {
		return code
	}
	defer cancel()
	defer conn.Close()
	raw, err := ngRequest(ctx, conn, map[string]string{"command": "query", "call-id": id})
	if err != nil {
		if ne, ok := err.(*ngError); ok && ne.reason == "Unknown call-id" {
			fmt.Fprintf(stderr, "rtpctl session: Call Id not found (%s).\n", id)
			return ExitFailed
		}
		return sessionCmd.failed(stderr, o, "ng-ctl", err)
	}
	// What query does not say; without it (the call ended meanwhile, or
	// an ng-ctl without the endpoint) the header lines are left out.
	out := sessionOutput{Query: raw}
	if rep, err := bus.Request(ctx, conn, ngapi.SessionsEndpoint, ngapi.SessionsRequest{Call: id}); err == nil && len(rep.Sessions) == 1 {
		out.Session = &rep.Sessions[0]
	}
	if o.json {
		return printJSON(stdout, out)
	}
	var q struct {
		Created    int64           `json:"created"`
		LastSignal int64           `json:"last signal"`
		Tags       json.RawMessage `json:"tags"`
		Totals     struct {
			RTP  ngCounters `json:"RTP"`
			RTCP ngCounters `json:"RTCP"`
		} `json:"totals"`
	}
	if err := json.Unmarshal(raw, &q); err != nil {
		return sessionCmd.failed(stderr, o, "ng-ctl", fmt.Errorf("bad query reply: %w", err))
	}
	tags, err := members(q.Tags)
	if err != nil {
		return sessionCmd.failed(stderr, o, "ng-ctl", fmt.Errorf("bad query reply: %w", err))
	}

	tw := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "Call-ID:\t%s\n", id)
	if s := out.Session; s != nil {
		own := "own"
		if s.Foreign {
			own = "foreign"
			if s.Partition != "" {
				own += ", from Redis " + s.Partition
			}
		}
		fmt.Fprintf(tw, "Owner:\t%s (%s)\n", s.Owner, own)
	}
	created, last := time.Unix(q.Created, 0), time.Unix(q.LastSignal, 0)
	fmt.Fprintf(tw, "Created:\t%s (%s)\n", clock(created), ago(created))
	fmt.Fprintf(tw, "Last signal:\t%s (%s)\n", clock(last), ago(last))
	if s := out.Session; s != nil {
		mark := "no"
		if !s.DeleteAt.IsZero() {
			mark = fmt.Sprintf("%s (%s)", clock(s.DeleteAt), ago(s.DeleteAt))
		}
		fmt.Fprintf(tw, "Deletion mark:\t%s\n", mark)
	}
	fmt.Fprintf(tw, "Totals:\tRTP %s; RTCP %s\n", counters(q.Totals.RTP), counters(q.Totals.RTCP))
	_ = tw.Flush()

	for _, m := range tags {
		var t queryTag
		if err := json.Unmarshal(m.Value, &t); err != nil {
			continue
		}
		fmt.Fprintf(stdout, "\n--- Tag '%s'", m.Key)
		if t.Label != "" {
			fmt.Fprintf(stdout, ", label '%s'", t.Label)
		}
		fmt.Fprintf(stdout, ", created %s", clock(time.Unix(t.Created, 0)))
		for _, s := range t.Subscriptions {
			fmt.Fprintf(stdout, ", in dialogue with '%s'", s.Tag)
		}
		fmt.Fprintln(stdout)
		if len(t.Medias) == 0 {
			fmt.Fprintln(stdout, "    no media yet")
			continue
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "    MEDIA\tSTREAM\tLOCAL\tADVERTISED\tENDPOINT\tPACKETS\tBYTES\tERRORS\tLAST PACKET\tFLAGS")
		for _, md := range t.Medias {
			media := strconv.Itoa(md.Index) + " " + md.Type
			if md.Protocol != "" {
				media += " " + md.Protocol
			}
			if len(md.Streams) == 0 {
				fmt.Fprintf(tw, "    %s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", media, dash(strings.Join(md.Flags, ",")))
			}
			for _, s := range md.Streams {
				kind, flags := "", []string{}
				for _, f := range s.Flags {
					if (f == "RTP" || f == "RTCP") && kind == "" {
						kind = f
					} else {
						flags = append(flags, f)
					}
				}
				flags = append(flags, md.Flags...)
				if s.CryptoSuite != "" {
					flags = append(flags, "SRTP "+s.CryptoSuite)
				}
				if s.Stats.SRTPFailures > 0 {
					flags = append(flags, strconv.FormatUint(s.Stats.SRTPFailures, 10)+" SRTP failures")
				}
				// query's last packet is at least the last signalling, as
				// rtpengine's: a stream without packets never had one.
				lastPacket := "never"
				if s.Stats.Packets > 0 && s.LastPacket > 0 {
					lastPacket = ago(time.Unix(s.LastPacket, 0))
				}
				local := ngEndpoint{Address: s.LocalAddr, Port: s.LocalPort}
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", media, dash(kind), local, s.Advertised, s.Endpoint,
					s.Stats.Packets, s.Stats.Bytes, s.Stats.Errors, lastPacket, dash(strings.Join(flags, ",")))
			}
		}
		_ = tw.Flush()
	}
	return ExitOK
}

func counters(c ngCounters) string {
	s := fmt.Sprintf("%d p, %d b, %d e", c.Packets, c.Bytes, c.Errors)
	if c.KernelDrops > 0 {
		s += fmt.Sprintf(", %d kernel drops", c.KernelDrops)
	}
	if c.SRTPFailures > 0 {
		s += fmt.Sprintf(", %d SRTP failures", c.SRTPFailures)
	}
	return s
}

var terminateCmd = clientCmd{"terminate", "rtpctl terminate CALL-ID|all|own|foreign [options]",
	"Ends one call, or all, own or foreign calls, at once (rtpengine-ctl's terminate): sockets\n" +
		"are released, the call's record leaves node state, and it counts as forced terminated.\n" +
		"A foreign call stays in its owner's Redis database."}

// cmdTerminate is rtpengine-ctl's terminate.
func cmdTerminate(args []string, stdout, stderr io.Writer) int {
	pos, opts, help := terminateCmd.split(args)
	if help {
		return terminateCmd.help(opts, stdout, stderr)
	}
	if len(pos) != 1 || pos[0] == "" {
		if len(pos) == 0 {
			return terminateCmd.usage(stderr, "missing CALL-ID, all, own or foreign")
		}
		return terminateCmd.usage(stderr, "one CALL-ID, all, own or foreign, got %d arguments", len(pos))
	}
	req := ngapi.TerminateRequest{Call: pos[0]}
	switch pos[0] {
	case ngapi.WhichAll, ngapi.WhichOwn, ngapi.WhichForeign:
		req = ngapi.TerminateRequest{Which: pos[0]}
	}
	o, conn, ctx, cancel, code := terminateCmd.start(opts, stdout, stderr)
	if code >= 0 {
		return code
	}
	defer cancel()
	defer conn.Close()
	rep, err := bus.Request(ctx, conn, ngapi.TerminateEndpoint, req)
	if err != nil {
		return terminateCmd.failed(stderr, o, "ng-ctl", err)
	}
	if o.json {
		return printJSON(stdout, rep)
	}
	switch req.Which {
	case "":
		fmt.Fprintf(stdout, "Call Id (%s) successfully terminated by operator.\n", req.Call)
	case ngapi.WhichAll:
		fmt.Fprintf(stdout, "All calls terminated by operator (%d).\n", len(rep.Terminated))
	default:
		fmt.Fprintf(stdout, "All %s calls terminated by operator (%d).\n", req.Which, len(rep.Terminated))
	}
	return ExitOK
}
