// Package cli is the options of every rtpkit command: parsed with
// peterbourgon/ff/v3 (long flags, RTPKIT_* environment, --config file, in
// that order of precedence; one config file can serve the whole node,
// NodeOptions), the option types rtpengine operators know (repeatable
// options, syslog log levels), the options every daemon shares (Common),
// the usage text and exit code 2 of a bad option (Fail, ParseOrExit), and
// the logger the options ask for.
//
// It does nothing else to the process: tuning it is pkg/proctune's (whose
// Scheduling and Priority values Common registers as --scheduling and
// --priority), a daemon's main (signals, the systemd watchdog, exit codes)
// is pkg/daemon's.
package cli
