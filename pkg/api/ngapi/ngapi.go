// Package ngapi is ng-ctl's contract on the bus: the ng endpoint (one ng
// document as JSON, rtpctl ng) and the operator's endpoints (sessions,
// terminate, settings) with their messages.
package ngapi

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
)

// Daemon is ng-ctl's name on the bus.
const Daemon = "ng-ctl"

// ng-ctl's endpoints (rtpkit.v1.<node>.ng-ctl.<verb>).
var (
	// NGEndpoint takes one ng document as JSON and answers the JSON reply,
	// both carried as is.
	NGEndpoint = api.Endpoint[json.RawMessage, json.RawMessage]{Daemon: Daemon, Verb: "ng"}
	// SessionsEndpoint lists calls.
	SessionsEndpoint = api.Endpoint[SessionsRequest, SessionsReply]{Daemon: Daemon, Verb: "sessions"}
	// TerminateEndpoint ends calls at once (a named call that is not there
	// is a 404).
	TerminateEndpoint = api.Endpoint[TerminateRequest, TerminateReply]{Daemon: Daemon, Verb: "terminate"}
	// SettingsEndpoint reads and changes the timers and the session limit.
	SettingsEndpoint = api.Endpoint[SettingsRequest, Settings]{Daemon: Daemon, Verb: "settings"}
)

// Which values select own, foreign or all calls.
const (
	WhichAll     = "all"
	WhichOwn     = "own"
	WhichForeign = "foreign"
)

// SessionsRequest asks for the calls ng-ctl holds.
type SessionsRequest struct {
	// Which is all (default), own or foreign.
	Which string `json:"which,omitempty"`
	// Call restricts the list to the call of this id.
	Call string `json:"call,omitempty"`
}

// Session is one call (rtpengine-ctl's `list sessions` line).
type Session struct {
	ID      string `json:"id"`
	Owner   string `json:"owner"`
	Foreign bool   `json:"foreign"`
	// Partition is the Redis partition a restored call came from (db:N).
	Partition  string    `json:"partition,omitempty"`
	Created    time.Time `json:"created"`
	LastSignal time.Time `json:"last_signal"`
	// DeleteAt is when a pending delete removes the whole call (rtpengine's
	// deletion mark).
	DeleteAt time.Time `json:"delete_at,omitzero"`
	Tags     []string  `json:"tags"`
}

// SessionsReply lists calls, oldest first.
type SessionsReply struct {
	Sessions []Session `json:"sessions"`
}

// TerminateRequest names the calls to end: one call, or all, own or
// foreign ones.
type TerminateRequest struct {
	Call  string `json:"call,omitempty"`
	Which string `json:"which,omitempty"`
}

// TerminateReply lists the calls that were ended.
type TerminateReply struct {
	Terminated []string `json:"terminated"`
}

// Settings are the timers (seconds) and the session limit in force, by
// rtpengine-ctl's parameter names.
type Settings struct {
	Timeout       int `json:"timeout"`
	SilentTimeout int `json:"silenttimeout"`
	OfferTimeout  int `json:"offertimeout"`
	FinalTimeout  int `json:"finaltimeout"`
	DeleteDelay   int `json:"deletedelay"`
	MaxSessions   int `json:"maxsessions"`
}

// SettingNames are the names Settings and SettingsRequest use, in order.
var SettingNames = []string{"timeout", "silenttimeout", "offertimeout", "finaltimeout", "deletedelay", "maxsessions"}

// Get returns the setting of that name; false for an unknown name.
func (s Settings) Get(name string) (int, bool) {
	switch name {
	case "timeout":
		return s.Timeout, true
	case "silenttimeout":
		return s.SilentTimeout, true
	case "offertimeout":
		return s.OfferTimeout, true
	case "finaltimeout":
		return s.FinalTimeout, true
	case "deletedelay":
		return s.DeleteDelay, true
	case "maxsessions":
		return s.MaxSessions, true
	}
	return 0, false
}

// CheckSetting says what is wrong with a value for a setting, nil if
// nothing: timers are seconds >= 0, maxsessions is -1 (no limit) or more.
func CheckSetting(name string, v int) error {
	switch name {
	case "maxsessions":
		if v < -1 {
			return fmt.Errorf("maxsessions %d: must be -1 (no limit) or more", v)
		}
	case "timeout", "silenttimeout", "offertimeout", "finaltimeout", "deletedelay":
		if v < 0 {
			return fmt.Errorf("%s %d: must be >= 0", name, v)
		}
	default:
		return fmt.Errorf("unknown setting %q", name)
	}
	return nil
}

// SettingsRequest changes settings (by name) and reads them all; without
// Set it only reads. Changes last until ng-ctl restarts (its options
// apply again then), as rtpengine-ctl's set.
type SettingsRequest struct {
	Set map[string]int `json:"set,omitempty"`
}
