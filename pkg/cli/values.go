package cli

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// List is a repeatable string option. Each Set appends; a value holding
// several entries separated by ';' (as rtpengine's config files and the
// RTPKIT_* environment write them) appends each entry.
type List []string

// String joins the entries with ';', the form Set splits again.
func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ";")
}

// Set appends the ';'-separated entries of v, ignoring empty ones.
func (l *List) Set(v string) error {
	for _, part := range strings.Split(v, ";") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// IntList is a repeatable integer option (for example --subscribe-keyspace).
type IntList []int

// String joins the entries with ';'.
func (l *IntList) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ";")
}

// Set appends the ';'-separated integers of v.
func (l *IntList) Set(v string) error {
	for _, part := range strings.Split(v, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil {
			return fmt.Errorf("%q is not an integer", part)
		}
		*l = append(*l, n)
	}
	return nil
}

// LogLevel is a slog level that also accepts rtpengine's syslog numbers
// (0-7: 7 debug, 6 and 5 info, 4 warn, 0-3 error).
type LogLevel struct{ slog.Level }

// String gives the level's name in lower case.
func (l *LogLevel) String() string { return strings.ToLower(l.Level.String()) }

// Set parses a name (debug, info, notice, warn, warning, error, err) or a
// syslog number.
func (l *LogLevel) Set(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "7", "debug":
		l.Level = slog.LevelDebug
	case "6", "5", "info", "notice":
		l.Level = slog.LevelInfo
	case "4", "warn", "warning":
		l.Level = slog.LevelWarn
	case "3", "2", "1", "0", "error", "err", "crit", "alert", "emerg":
		l.Level = slog.LevelError
	default:
		return fmt.Errorf("%q is not a log level (0-7 or debug|info|warn|error)", v)
	}
	return nil
}

// LogFormat selects the log handler: "text" or "json".
type LogFormat string

// String returns the format's name.
func (f *LogFormat) String() string { return string(*f) }

// Set accepts "text" or "json".
func (f *LogFormat) Set(v string) error {
	switch v {
	case "text", "json":
		*f = LogFormat(v)
		return nil
	}
	return fmt.Errorf("%q is not a log format (text|json)", v)
}
