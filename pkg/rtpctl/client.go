package rtpctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
)

// clientCmd is one client command's name and usage text.
type clientCmd struct {
	name, synopsis, summary string
}

// split separates the positional arguments of a client command from its
// options, wherever they are (`rtpctl session ID --json` and `rtpctl
// session --json ID` both work; after `--` everything is positional). A
// negative number is a value, not an option (`rtpctl set maxsessions -1`).
func (c clientCmd) split(args []string) (pos, opts []string, help bool) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	var o clientOptions
	o.register(fs)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if _, err := strconv.Atoi(a); err == nil || !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		opts = append(opts, a) // clientCommand renames --timeout
		name, _, hasValue := strings.Cut(strings.TrimLeft(waitAlias(a), "-"), "=")
		switch name {
		case "h", "help":
			help = true
		}
		f := fs.Lookup(name)
		if hasValue || f == nil {
			continue // unknown options are the parser's to report
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			opts = append(opts, args[i])
		}
	}
	return pos, opts, help
}

// start parses the options and connects (clientCommand); code >= 0 means
// return it.
func (c clientCmd) start(opts []string, stdout, stderr io.Writer) (*clientOptions, *bus.Conn, context.Context, context.CancelFunc, int) {
	return clientCommand(c.name, c.synopsis, c.summary, opts, stdout, stderr)
}

// help prints the usage for --help, or reports bad options, without
// connecting; opts holds --help (split said so).
func (c clientCmd) help(opts []string, stdout, stderr io.Writer) int {
	_, conn, _, cancel, code := clientCommand(c.name, c.synopsis, c.summary, opts, stdout, stderr)
	if code < 0 { // connected after all (not with --help in opts)
		cancel()
		conn.Close()
		return ExitOK
	}
	return code
}

// usage reports a bad command line: one line saying what is wrong, then
// the synopsis; exit code 2.
func (c clientCmd) usage(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "rtpctl %s: %s\nUsage: %s\n", c.name, fmt.Sprintf(format, args...), c.synopsis)
	return ExitUsage
}

// failed reports a request that failed and returns the exit code: 3 when
// nothing answered (the daemon is not running, or the node did not answer
// in time), 1 when the node answered with an error.
func (c clientCmd) failed(stderr io.Writer, o *clientOptions, daemon string, err error) int {
	var ne *ngError
	switch {
	case errors.As(err, &ne):
		fmt.Fprintf(stderr, "rtpctl %s: %s\n", c.name, ne.reason)
		return ExitFailed
	case errors.Is(err, bus.ErrNoResponders):
		fmt.Fprintf(stderr, "rtpctl %s: %s is not running on node %q (bus %s)\n", c.name, daemon, o.common.NodeID, bus.RedactURL(o.common.Bus.URL))
		return ExitUnreachable
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "rtpctl %s: %s of node %q did not answer within %s (bus %s)\n", c.name, daemon, o.common.NodeID, o.wait, bus.RedactURL(o.common.Bus.URL))
		return ExitUnreachable
	}
	var be *bus.Error
	if errors.As(err, &be) {
		fmt.Fprintf(stderr, "rtpctl %s: %s\n", c.name, be.Message)
	} else {
		fmt.Fprintf(stderr, "rtpctl %s: %v\n", c.name, err)
	}
	return ExitFailed
}

// ngError is an ng reply with result "error".
type ngError struct{ reason string }

func (e *ngError) Error() string { return e.reason }

// ngRequest sends one ng document to ng-ctl over the bus (its JSON bridge)
// and returns the reply as ng-ctl wrote it; a reply with result "error" is
// returned with an *ngError.
func ngRequest(ctx context.Context, conn *bus.Conn, doc any) (json.RawMessage, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode ng document: %w", err)
	}
	rep, err := bus.Request(ctx, conn, ngapi.NGEndpoint, raw)
	if err != nil {
		return nil, err
	}
	var r struct {
		Result string `json:"result"`
		Reason string `json:"error-reason"`
	}
	if err := json.Unmarshal(rep, &r); err != nil {
		return rep, fmt.Errorf("ng reply is not a JSON object: %w", err)
	}
	if r.Result == "error" {
		return rep, &ngError{reason: r.Reason}
	}
	return rep, nil
}

// printRaw prints a JSON document indented, keys in the order they came.
func printRaw(w io.Writer, raw []byte) int {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return ExitFailed
	}
	b.WriteByte('\n')
	_, _ = w.Write(b.Bytes())
	return ExitOK
}

// objMember is one key of a JSON object, in the order of the document.
type objMember struct {
	Key   string
	Value json.RawMessage
}

// members decodes a JSON object keeping its key order (ng replies are
// ordered dictionaries: the tags of a call come in the call's order).
func members(raw json.RawMessage) ([]objMember, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var out []objMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, objMember{k, v})
	}
	return out, nil
}

// clock formats a time for people: local, to the second.
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// ago says how long ago t was, to the second.
func ago(t time.Time) string {
	d := time.Since(t).Truncate(time.Second)
	if d < 0 {
		return "in " + (-d).String()
	}
	return d.String() + " ago"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
