package ifspec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The default global media port range, as rtpengine's port-min and port-max.
const (
	DefaultPortMin = 30000
	DefaultPortMax = 40000
)

// ParsePortRange parses a per-interface port range, NAME/MIN-MAX, such as
// "pub/40000-49999". NAME is required (it may be DefaultName); the range is
// validated as for --port-min/--port-max: 1 <= MIN <= MAX <= 65535, holding at
// least one RTP/RTCP pair (an even port and the odd one after it).
func ParsePortRange(s string) (name string, min, max int, err error) {
	t := strings.TrimSpace(s)
	name, r, ok := strings.Cut(t, "/")
	if !ok {
		return "", 0, 0, fmt.Errorf("port range %q: %w: want NAME/MIN-MAX", s, errBadPortRange)
	}
	if name == "" {
		return "", 0, 0, fmt.Errorf("port range %q: %w interface name before \"/\"", s, errEmpty)
	}
	if err := checkName(name); err != nil {
		return "", 0, 0, fmt.Errorf("port range %q: %w", s, err)
	}
	los, his, ok := strings.Cut(r, "-")
	if !ok {
		return "", 0, 0, fmt.Errorf("port range %q: %w: want NAME/MIN-MAX", s, errBadPortRange)
	}
	if min, err = parsePort(los); err != nil {
		return "", 0, 0, fmt.Errorf("port range %q: %w: MIN %v", s, errBadPortRange, err)
	}
	if max, err = parsePort(his); err != nil {
		return "", 0, 0, fmt.Errorf("port range %q: %w: MAX %v", s, errBadPortRange, err)
	}
	if err := checkRange(fmt.Sprintf("port range %q", s), min, max); err != nil {
		return "", 0, 0, err
	}
	return name, min, max, nil
}

// parsePort parses a decimal port number without sign or spaces.
func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("is empty")
	}
	if len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	return n, nil
}

// checkRange validates the port range min-max; what names it in the error.
func checkRange(what string, min, max int) error {
	switch {
	case min < 1 || min > 65535:
		return fmt.Errorf("%s: %w: minimum %d is not between 1 and 65535", what, errBadPortRange, min)
	case max < 1 || max > 65535:
		return fmt.Errorf("%s: %w: maximum %d is not between 1 and 65535", what, errBadPortRange, max)
	case min > max:
		return fmt.Errorf("%s: %w: minimum %d is above maximum %d", what, errBadPortRange, min, max)
	case max-min+1 < 2:
		return fmt.Errorf("%s: %w: %d-%d holds fewer than 2 ports", what, errBadPortRange, min, max)
	case min+min%2+1 > max:
		return fmt.Errorf("%s: %w: %d-%d holds no RTP/RTCP pair (an even port and the next odd one)",
			what, errBadPortRange, min, max)
	}
	return nil
}
