package cli

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/peterbourgon/ff/v3"
)

// EnvPrefix is the prefix of environment variables naming options:
// --port-min is RTPKIT_PORT_MIN.
const EnvPrefix = "RTPKIT"

// UsageError is a bad option, value or config-file line: the command prints
// it with its usage and exits with code 2.
type UsageError struct{ Msg string }

// Error returns the one-line message.
func (e *UsageError) Error() string { return e.Msg }

// Usagef builds a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// NewFlagSet returns a flag set that reports errors instead of printing
// them, with the --config option every command takes.
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("config", "", "read options from `file` (one 'name value' per line, # comments)")
	return fs
}

// Parse fills fs from args, then from RTPKIT_* environment variables, then
// from the --config file, each only for options not already set. Errors
// come back as *UsageError (or flag.ErrHelp for -h/--help).
func Parse(fs *flag.FlagSet, args []string) error {
	if fs.Lookup("config") == nil {
		fs.String("config", "", "read options from `file`")
	}
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix(EnvPrefix),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(configParser(fs)),
	)
	if err == nil {
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return ue
	}
	return &UsageError{Msg: cleanFlagError(err)}
}

// cleanFlagError turns the flag and ff packages' messages into one line
// that names the option the way operators write it (--name).
func cleanFlagError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error parsing commandline arguments: ")
	msg = strings.TrimPrefix(msg, "error parsing environment variables: ")
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return "unknown option --" + strings.TrimLeft(name, "-")
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return "option --" + strings.TrimLeft(name, "-") + " needs a value"
	}
	msg = strings.Replace(msg, " for flag -", " for option --", 1)
	msg = strings.Replace(msg, "error setting flag ", "option ", 1)
	if strings.HasPrefix(msg, "open ") {
		msg = "config file: " + msg
	}
	return msg
}

// configParser reads rtpkit's config file format: one option per line as
// "name value", "name = value" or "name=value"; '#' or ';' starts a comment
// line; a bare name sets a boolean option; "[rtpkit]" and "[rtpengine]"
// section headers are accepted so that an rtpengine.conf section carries
// over. Values of repeatable options are separated by ';'. Options of other
// rtpkit daemons (NodeOptions) are skipped, so one file serves the node.
func configParser(fs *flag.FlagSet) ff.ConfigFileParser {
	return func(r io.Reader, set func(name, value string) error) error {
		file := ""
		if f := fs.Lookup("config"); f != nil {
			file = f.Value.String()
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			if line[0] == '[' {
				switch line {
				case "[rtpkit]", "[rtpengine]":
					continue
				}
				return Usagef("config file %s line %d: unknown section %s (only [rtpkit] or [rtpengine])", file, n, line)
			}
			name, value := splitConfigLine(line)
			name = strings.TrimLeft(name, "-")
			if name == "config" {
				return Usagef("config file %s line %d: a config file cannot name another", file, n)
			}
			f := fs.Lookup(name)
			if f == nil {
				if NodeOptions[name] || ClientOptions[name] {
					continue // another daemon's (or rtpctl's) option in a node-wide file
				}
				return Usagef("config file %s line %d: unknown option %q", file, n, name)
			}
			if value == "" {
				if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
					value = "true"
				} else {
					return Usagef("config file %s line %d: option %q needs a value", file, n, name)
				}
			}
			if err := set(name, value); err != nil {
				return Usagef("config file %s line %d: %s", file, n, cleanFlagError(err))
			}
		}
		if err := sc.Err(); err != nil {
			return Usagef("config file %s: %v", file, err)
		}
		return nil
	}
}

func splitConfigLine(line string) (name, value string) {
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return line, ""
	}
	name = line[:i]
	rest := strings.TrimSpace(line[i:])
	rest = strings.TrimSpace(strings.TrimPrefix(rest, "="))
	if len(rest) >= 2 && (rest[0] == '"' && rest[len(rest)-1] == '"' || rest[0] == '\'' && rest[len(rest)-1] == '\'') {
		rest = rest[1 : len(rest)-1]
	}
	return name, rest
}

// PrintUsage writes the usage of a command: its synopsis, a summary and its
// options with defaults, sorted by name.
func PrintUsage(w io.Writer, fs *flag.FlagSet, synopsis, summary string) {
	fmt.Fprintf(w, "Usage: %s\n", synopsis)
	if summary != "" {
		fmt.Fprintf(w, "\n%s\n", summary)
	}
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	if len(flags) == 0 {
		return
	}
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	fmt.Fprintf(w, "\nOptions (also RTPKIT_<NAME> in the environment, or 'name value' lines in --config):\n")
	for _, f := range flags {
		arg, usage := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if arg != "" {
			head += " " + arg
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "[]" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		if len(head) > 33 {
			fmt.Fprintf(w, "%s\n%-34s %s%s\n", head, "", usage, def)
		} else {
			fmt.Fprintf(w, "%-34s %s%s\n", head, usage, def)
		}
	}
}

// ParseOrExit is how a daemon's main reads its options: it parses args
// into cfg (Parse: flags, then environment, then --config file) and checks
// them (cfg.Validate). --help prints the usage to stdout and exits 0; a bad
// option, a stray argument or a failed check is printed with the usage and
// exits 2 (Fail).
func ParseOrExit(name, summary string, cfg Config, args []string) {
	fs := NewFlagSet(name)
	cfg.RegisterFlags(fs)
	synopsis := name + " [options]"
	if err := Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			PrintUsage(os.Stdout, fs, synopsis, summary)
			os.Exit(0)
		}
		Fail(name, fs, synopsis, summary, err)
	}
	if fs.NArg() > 0 {
		Fail(name, fs, synopsis, summary, Usagef("unexpected argument %q", fs.Arg(0)))
	}
	if err := cfg.Validate(); err != nil {
		Fail(name, fs, synopsis, summary, err)
	}
}

// Fail prints err and the usage to stderr and exits with code 2.
func Fail(name string, fs *flag.FlagSet, synopsis, summary string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	PrintUsage(os.Stderr, fs, synopsis, summary)
	os.Exit(2)
}
