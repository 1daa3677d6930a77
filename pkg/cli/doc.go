// Package cli is what every rtpkit command shares: options parsed with
// peterbourgon/ff/v3 (long flags, RTPKIT_* environment, --config file, in
// that order of precedence), the option types rtpengine operators know
// (repeatable options, syslog log levels), logging setup, and the process
// main that turns errors into exit codes (2: bad usage, 1: runtime failure).
package cli
