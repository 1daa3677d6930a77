package ngctl

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/calls"
)

// Subjects of ng-ctl's endpoints, under rtpkit.v1.<node>.ng-ctl. (rtpctl
// is their client).
const (
	// SubjectNG takes one ng document as JSON and answers the JSON reply.
	SubjectNG = "ng"
	// SubjectSessions lists calls (SessionsRequest → SessionsReply).
	SubjectSessions = "sessions"
	// SubjectTerminate ends calls at once (TerminateRequest →
	// TerminateReply; a named call that is not there is a 404).
	SubjectTerminate = "terminate"
	// SubjectSettings reads and changes the timers and the session limit
	// (SettingsRequest → Settings).
	SubjectSettings = "settings"
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
			return bus.Errorf(bus.CodeBadRequest, "maxsessions %d: must be -1 (no limit) or more", v)
		}
	case "timeout", "silenttimeout", "offertimeout", "finaltimeout", "deletedelay":
		if v < 0 {
			return bus.Errorf(bus.CodeBadRequest, "%s %d: must be >= 0", name, v)
		}
	default:
		return bus.Errorf(bus.CodeBadRequest, "unknown setting %q", name)
	}
	return nil
}

// SettingsRequest changes settings (by name) and reads them all; without
// Set it only reads. Changes last until ng-ctl restarts (its options
// apply again then), as rtpengine-ctl's set.
type SettingsRequest struct {
	Set map[string]int `json:"set,omitempty"`
}

// ctl serves the operator's endpoints of ng-ctl.
type ctl struct {
	engine *calls.Engine
	mu     sync.Mutex // one settings change at a time
}

// serveCtl adds the operator's endpoints (rtpctl list, session, terminate,
// get, set) to ng-ctl's bus service.
func serveCtl(svc *bus.Service, conn *bus.Conn, engine *calls.Engine) error {
	c := &ctl{engine: engine}
	if err := bus.Handle(svc, SubjectSessions, conn.Subject("ng-ctl", SubjectSessions), c.sessions); err != nil {
		return err
	}
	if err := bus.Handle(svc, SubjectTerminate, conn.Subject("ng-ctl", SubjectTerminate), c.terminate); err != nil {
		return err
	}
	return bus.Handle(svc, SubjectSettings, conn.Subject("ng-ctl", SubjectSettings), c.settings)
}

func checkWhich(w string) error {
	switch w {
	case "", WhichAll, WhichOwn, WhichForeign:
		return nil
	}
	return bus.Errorf(bus.CodeBadRequest, "which %q: want all, own or foreign", w)
}

func selected(which string, foreign bool) bool {
	switch which {
	case WhichOwn:
		return !foreign
	case WhichForeign:
		return foreign
	}
	return true
}

func (c *ctl) sessions(_ context.Context, req SessionsRequest) (SessionsReply, error) {
	if err := checkWhich(req.Which); err != nil {
		return SessionsReply{}, err
	}
	rep := SessionsReply{Sessions: []Session{}}
	for _, s := range c.engine.Sessions() {
		if !selected(req.Which, s.Foreign) || (req.Call != "" && s.ID != req.Call) {
			continue
		}
		rep.Sessions = append(rep.Sessions, Session{ID: s.ID, Owner: s.Owner, Foreign: s.Foreign, Partition: s.Partition,
			Created: s.Created.UTC(), LastSignal: s.LastSignal.UTC(), DeleteAt: s.DeleteAt.UTC(), Tags: s.Tags})
	}
	if req.Call != "" && len(rep.Sessions) == 0 {
		return rep, bus.Errorf(bus.CodeNotFound, "Call Id not found (%s).", req.Call)
	}
	return rep, nil
}

func (c *ctl) terminate(_ context.Context, req TerminateRequest) (TerminateReply, error) {
	rep := TerminateReply{Terminated: []string{}}
	if req.Call != "" {
		if !c.engine.Terminate(req.Call) {
			return rep, bus.Errorf(bus.CodeNotFound, "Call Id not found (%s).", req.Call)
		}
		rep.Terminated = append(rep.Terminated, req.Call)
		return rep, nil
	}
	if req.Which == "" {
		return rep, bus.Errorf(bus.CodeBadRequest, "name a call, or which: all, own or foreign")
	}
	if err := checkWhich(req.Which); err != nil {
		return rep, err
	}
	for _, s := range c.engine.Sessions() {
		if selected(req.Which, s.Foreign) && c.engine.Terminate(s.ID) {
			rep.Terminated = append(rep.Terminated, s.ID)
		}
	}
	return rep, nil
}

func (c *ctl) settings(_ context.Context, req SettingsRequest) (Settings, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(req.Set))
	for name, v := range req.Set {
		if err := CheckSetting(name, v); err != nil {
			return Settings{}, err
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) > 0 {
		c.engine.UpdateTimers(func(t *calls.Timers) {
			for _, name := range names {
				v := req.Set[name]
				switch name {
				case "timeout":
					t.Timeout = v
				case "silenttimeout":
					t.SilentTimeout = v
				case "offertimeout":
					t.OfferTimeout = v
				case "finaltimeout":
					t.FinalTimeout = v
				case "deletedelay":
					t.DeleteDelay = v
				}
			}
		})
		if v, ok := req.Set["maxsessions"]; ok {
			c.engine.SetMaxSessions(v)
		}
	}
	t := c.engine.Timers()
	return Settings{Timeout: t.Timeout, SilentTimeout: t.SilentTimeout, OfferTimeout: t.OfferTimeout,
		FinalTimeout: t.FinalTimeout, DeleteDelay: t.DeleteDelay, MaxSessions: c.engine.MaxSessions()}, nil
}
