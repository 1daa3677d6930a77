package rtpctl

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
)

var interfacesCmd = clientCmd{"interfaces", "rtpctl interfaces [options]",
	"Lists portd's local addresses per logical interface with their port range and how many\n" +
		"ports are used, free and resting in quarantine (rtpengine-ctl's `list interfaces`); used\n" +
		"ports are in calls or leased to ng-ctl's stock of ready pairs."}

// cmdInterfaces is rtpengine-ctl's list interfaces, from portd.list.
func cmdInterfaces(args []string, stdout, stderr io.Writer) int {
	pos, opts, help := interfacesCmd.split(args)
	if help {
		return interfacesCmd.help(opts, stdout, stderr)
	}
	if len(pos) > 0 {
		return interfacesCmd.usage(stderr, "unexpected argument %q", pos[0])
	}
	o, conn, ctx, cancel, code := interfacesCmd.start(opts, stdout, stderr)
	if code >= 0 {
		return code
	}
	defer cancel()
	defer conn.Close()
	rep, err := bus.Request(ctx, conn, portdapi.ListEndpoint, api.Empty{})
	if err != nil {
		return interfacesCmd.failed(stderr, o, "portd", err)
	}
	if o.json {
		return printJSON(stdout, rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INTERFACE\tADDRESS\tADVERTISED\tPORTS\tUSED\tFREE\tQUARANTINED\tUSE\tPAIRS IN CALLS\tPAIRS LEASED\tON HOST")
	for _, ifc := range rep.Interfaces {
		for _, a := range ifc.Addresses {
			adv := "-"
			if a.Advertised.IsValid() {
				adv = a.Advertised.String()
			}
			total := a.PortMax - a.PortMin + 1
			use := 0.0
			if total > 0 {
				use = 100 * float64(a.Used) / float64(total)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d-%d\t%d\t%d\t%d\t%.1f%%\t%d\t%d\t%s\n", ifc.Name, a.Local, adv, a.PortMin, a.PortMax,
				a.Used, a.Free, a.Quarantined, use, a.Assigned, a.Leased, yesNo(a.Present))
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "Media sockets open: %d (descriptor limit %d); forwarding workers: %d\n", rep.Sockets, rep.FDLimit, len(rep.Workers))
	return ExitOK
}

// settingKeys are rtpengine-ctl's output names of the settings.
var settingKeys = map[string]string{
	"timeout": "TIMEOUT", "silenttimeout": "SILENT_TIMEOUT", "offertimeout": "OFFER_TIMEOUT",
	"finaltimeout": "FINAL_TIMEOUT", "deletedelay": "DELETE_DELAY", "maxsessions": "MAX_SESSIONS",
}

// settingName returns the setting a word names (rtpengine-ctl's name, or
// the option's: silent-timeout, max-sessions), "" if none.
func settingName(w string) string {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(w))
	if _, ok := settingKeys[n]; ok {
		return n
	}
	return ""
}

var getCmd = clientCmd{"get", "rtpctl get [timeout|silenttimeout|offertimeout|finaltimeout|deletedelay|maxsessions|all] [options]",
	"Prints ng-ctl's timers (seconds) and session limit in force (rtpengine-ctl's get / list);\n" +
		"without a name, all of them."}

var setCmd = clientCmd{"set", "rtpctl set timeout|silenttimeout|offertimeout|finaltimeout|deletedelay|maxsessions VALUE [options]",
	"Changes one of ng-ctl's timers (seconds) or the session limit (-1 = none) at run time\n" +
		"(rtpengine-ctl's set); it applies to every call at once. It lasts until ng-ctl restarts:\n" +
		"put it in the configuration to keep it."}

// cmdGetSet is rtpengine-ctl's get and set of the timers and maxsessions.
func cmdGetSet(which string, args []string, stdout, stderr io.Writer) int {
	c := getCmd
	if which == "set" {
		c = setCmd
	}
	pos, opts, help := c.split(args)
	if help {
		return c.help(opts, stdout, stderr)
	}
	var req ngapi.SettingsRequest
	names := ngapi.SettingNames
	switch {
	case which == "get" && len(pos) > 1:
		return c.usage(stderr, "unexpected argument %q", pos[1])
	case which == "get" && len(pos) == 1 && pos[0] != "all":
		n := settingName(pos[0])
		if n == "" {
			return c.usage(stderr, "unknown parameter %q", pos[0])
		}
		names = []string{n}
	case which == "set" && len(pos) != 2:
		if len(pos) < 2 {
			return c.usage(stderr, "want a parameter and its value")
		}
		return c.usage(stderr, "unexpected argument %q", pos[2])
	case which == "set":
		n := settingName(pos[0])
		if n == "" {
			return c.usage(stderr, "unknown parameter %q", pos[0])
		}
		v, err := strconv.Atoi(pos[1])
		if err != nil {
			return c.usage(stderr, "%s: %q is not a whole number", n, pos[1])
		}
		if err := ngapi.CheckSetting(n, v); err != nil {
			return c.usage(stderr, "%v", err)
		}
		req.Set = map[string]int{n: v}
		names = []string{n}
	}
	o, conn, ctx, cancel, code := c.start(opts, stdout, stderr)
	if code >= 0 {
		return code
	}
	defer cancel()
	defer conn.Close()
	rep, err := bus.Request(ctx, conn, ngapi.SettingsEndpoint, req)
	if err != nil {
		return c.failed(stderr, o, "ng-ctl", err)
	}
	if o.json {
		if len(names) == 1 {
			v, _ := rep.Get(names[0])
			return printJSON(stdout, map[string]int{names[0]: v})
		}
		return printJSON(stdout, rep)
	}
	for _, n := range names {
		v, _ := rep.Get(n)
		if which == "set" {
			fmt.Fprintf(stdout, "Success setting %s to %d.\n", n, v)
		} else {
			fmt.Fprintf(stdout, "%s=%d\n", settingKeys[n], v)
		}
	}
	return ExitOK
}

var ngCmd = clientCmd{"ng", "rtpctl ng JSON|- [options]",
	"Sends one ng command, given as a JSON object (- reads it from stdin), to ng-ctl over the bus\n" +
		"and prints the reply as JSON, keys in ng-ctl's order. Exit code 1 if the result is an error.\n" +
		`Example: rtpctl ng '{"command":"query","call-id":"abc"}'`}

// cmdNG sends one ng document (JSON) to ng-ctl and prints its reply.
func cmdNG(args []string, stdout, stderr io.Writer) int {
	pos, opts, help := ngCmd.split(args)
	if help {
		return ngCmd.help(opts, stdout, stderr)
	}
	if len(pos) != 1 {
		if len(pos) == 0 {
			return ngCmd.usage(stderr, "missing the JSON document")
		}
		return ngCmd.usage(stderr, "one JSON document, got %d arguments (quote it)", len(pos))
	}
	doc := []byte(pos[0])
	if pos[0] == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintf(stderr, "rtpctl ng: read stdin: %v\n", err)
			return ExitFailed
		}
		doc = b
	}
	var cmd struct {
		Command *string `json:"command"`
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil {
		return ngCmd.usage(stderr, "not a JSON object: %v", err)
	}
	if err := json.Unmarshal(doc, &cmd); err != nil || cmd.Command == nil {
		return ngCmd.usage(stderr, `the document has no "command" string`)
	}
	o, conn, ctx, cancel, code := ngCmd.start(opts, stdout, stderr)
	if code >= 0 {
		return code
	}
	defer cancel()
	defer conn.Close()
	raw, err := ngRequest(ctx, conn, json.RawMessage(doc))
	if _, isNG := err.(*ngError); err != nil && !isNG {
		return ngCmd.failed(stderr, o, "ng-ctl", err)
	}
	printRaw(stdout, raw)
	if err != nil {
		return ExitFailed
	}
	return ExitOK
}
