package rtpctl

// The statistics `list numsessions` and `list totals` print: ng-ctl's
// counters, laid out as rtpengine-ctl lays them out.

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ngStatistics is the part of ng statistics' reply that list reads.
type ngStatistics struct {
	Statistics struct {
		Current numSessions     `json:"currentstatistics"`
		Total   json.RawMessage `json:"totalstatistics"`
		Control json.RawMessage `json:"controlstatistics"`
	} `json:"statistics"`
}

// numSessions is ng statistics' currentstatistics.
type numSessions struct {
	Own     int64 `json:"sessionsown"`
	Foreign int64 `json:"sessionsforeign"`
	Total   int64 `json:"sessionstotal"`
}

// totalStatistics are the totalstatistics list totals prints.
type totalStatistics struct {
	Uptime         string `json:"uptime"`
	Managed        int64  `json:"managedsessions"`
	Rejected       int64  `json:"rejectedsessions"`
	Timeout        int64  `json:"timeoutsessions"`
	SilentTimeout  int64  `json:"silenttimeoutsessions"`
	FinalTimeout   int64  `json:"finaltimeoutsessions"`
	OfferTimeout   int64  `json:"offertimeoutsessions"`
	Regular        int64  `json:"regularterminatedsessions"`
	Forced         int64  `json:"forcedterminatedsessions"`
	Packets        int64  `json:"relayedpackets"`
	PacketErrors   int64  `json:"relayedpacketerrors"`
	Bytes          int64  `json:"relayedbytes"`
	ZeroWayStreams int64  `json:"zerowaystreams"`
	OneWayStreams  int64  `json:"onewaystreams"`
	AvgDuration    string `json:"avgcallduration"`
}

// controlCommands are the columns of the control statistics, as
// controlstatistics names them.
var controlCommands = []string{"offer", "answer", "delete", "query", "list", "ping", "stats"}

func listStatistics(what string, opts []string, stdout, stderr io.Writer) int {
	o, conn, ctx, cancel, code := listCmd.start(opts, stdout, stderr)
	if code >= 0 {
		return code
	}
	defer cancel()
	defer conn.Close()
	raw, err := ngRequest(ctx, conn, map[string]string{"command": "statistics"})
	if err != nil {
		return listCmd.failed(stderr, o, "ng-ctl", err)
	}
	var st ngStatistics
	if err := json.Unmarshal(raw, &st); err != nil {
		return listCmd.failed(stderr, o, "ng-ctl", fmt.Errorf("bad statistics reply: %w", err))
	}
	cur := st.Statistics.Current
	if what == "numsessions" {
		if o.json {
			return printJSON(stdout, struct {
				Own     int64 `json:"own"`
				Foreign int64 `json:"foreign"`
				Total   int64 `json:"total"`
			}{cur.Own, cur.Foreign, cur.Total})
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', 0)
		fmt.Fprintf(tw, "Current sessions own:\t%d\n", cur.Own)
		fmt.Fprintf(tw, "Current sessions foreign:\t%d\n", cur.Foreign)
		fmt.Fprintf(tw, "Current sessions total:\t%d\n", cur.Total)
		_ = tw.Flush()
		return ExitOK
	}
	if o.json {
		return printRaw(stdout, mustJSON(map[string]json.RawMessage{
			"totalstatistics": st.Statistics.Total, "controlstatistics": st.Statistics.Control}))
	}
	var tot totalStatistics
	_ = json.Unmarshal(st.Statistics.Total, &tot)
	tw := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', 0)
	for _, l := range []struct {
		label string
		v     any
	}{
		{"Uptime of ng-ctl", seconds(tot.Uptime, time.Second)},
		{"Total managed sessions", tot.Managed},
		{"Total rejected sessions", tot.Rejected},
		{"Total timed-out sessions via TIMEOUT", tot.Timeout},
		{"Total timed-out sessions via SILENT_TIMEOUT", tot.SilentTimeout},
		{"Total timed-out sessions via FINAL_TIMEOUT", tot.FinalTimeout},
		{"Total timed-out sessions via OFFER_TIMEOUT", tot.OfferTimeout},
		{"Total regular terminated sessions", tot.Regular},
		{"Total forced terminated sessions", tot.Forced},
		{"Total relayed packets", tot.Packets},
		{"Total relayed packet errors", tot.PacketErrors},
		{"Total relayed bytes", tot.Bytes},
		{"Total number of 0 way streams", tot.ZeroWayStreams},
		{"Total number of 1 way streams", tot.OneWayStreams},
		{"Average call duration", seconds(tot.AvgDuration, time.Millisecond)},
	} {
		fmt.Fprintf(tw, "%s:\t%v\n", l.label, l.v)
	}
	_ = tw.Flush()

	var ctrl struct {
		Proxies []map[string]any `json:"proxies"`
	}
	_ = json.Unmarshal(st.Statistics.Control, &ctrl)
	fmt.Fprintln(stdout, "\nControl statistics:")
	if len(ctrl.Proxies) == 0 {
		fmt.Fprintln(stdout, "  no ng requests yet")
		return ExitOK
	}
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "PROXY")
	for _, c := range controlCommands {
		fmt.Fprintf(tw, "\t%s", strings.ToUpper(c))
	}
	fmt.Fprintln(tw, "\tERRORS")
	for _, p := range ctrl.Proxies {
		name, _ := p["proxy"].(string)
		if name == "invalid IP" || name == "" {
			name = "(bus)" // requests over the bus: rtpctl
		}
		fmt.Fprint(tw, name)
		for _, c := range controlCommands {
			fmt.Fprintf(tw, "\t%v", p[c+"count"])
		}
		fmt.Fprintf(tw, "\t%v\n", p["errorcount"])
	}
	_ = tw.Flush()
	return ExitOK
}

// seconds renders statistics' "s.µs" strings as a duration.
func seconds(s string, round time.Duration) string {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return dash(s)
	}
	return time.Duration(f * float64(time.Second)).Round(round).String()
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
