package ngctl

import (
	"context"
	"sort"
	"sync"

	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/calls"
)

// ctl serves the operator's endpoints of ng-ctl.
type ctl struct {
	engine *calls.Engine
	mu     sync.Mutex // one settings change at a time
}

// serveCtl adds the operator's endpoints (rtpctl list, session, terminate,
// get, set) to ng-ctl's bus service.
func serveCtl(svc *bus.Service, conn *bus.Conn, engine *calls.Engine) error {
	c := &ctl{engine: engine}
	if err := bus.Handle(svc, ngapi.SessionsEndpoint, c.sessions); err != nil {
		return err
	}
	if err := bus.Handle(svc, ngapi.TerminateEndpoint, c.terminate); err != nil {
		return err
	}
	return bus.Handle(svc, ngapi.SettingsEndpoint, c.settings)
}

func checkWhich(w string) error {
	switch w {
	case "", ngapi.WhichAll, ngapi.WhichOwn, ngapi.WhichForeign:
		return nil
	}
	return bus.Errorf(bus.CodeBadRequest, "which %q: want all, own or foreign", w)
}

func selected(which string, foreign bool) bool {
	switch which {
	case ngapi.WhichOwn:
		return !foreign
	case ngapi.WhichForeign:
		return foreign
	}
	return true
}

func (c *ctl) sessions(_ context.Context, req ngapi.SessionsRequest) (ngapi.SessionsReply, error) {
	if err := checkWhich(req.Which); err != nil {
		return ngapi.SessionsReply{}, err
	}
	rep := ngapi.SessionsReply{Sessions: []ngapi.Session{}}
	for _, s := range c.engine.Sessions() {
		if !selected(req.Which, s.Foreign) || (req.Call != "" && s.ID != req.Call) {
			continue
		}
		rep.Sessions = append(rep.Sessions, ngapi.Session{ID: s.ID, Owner: s.Owner, Foreign: s.Foreign, Partition: s.Partition,
			Created: s.Created.UTC(), LastSignal: s.LastSignal.UTC(), DeleteAt: s.DeleteAt.UTC(), Tags: s.Tags})
	}
	if req.Call != "" && len(rep.Sessions) == 0 {
		return rep, bus.Errorf(bus.CodeNotFound, "Call Id not found (%s).", req.Call)
	}
	return rep, nil
}

func (c *ctl) terminate(_ context.Context, req ngapi.TerminateRequest) (ngapi.TerminateReply, error) {
	rep := ngapi.TerminateReply{Terminated: []string{}}
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

func (c *ctl) settings(_ context.Context, req ngapi.SettingsRequest) (ngapi.Settings, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(req.Set))
	for name, v := range req.Set {
		if err := ngapi.CheckSetting(name, v); err != nil {
			return ngapi.Settings{}, bus.Errorf(bus.CodeBadRequest, "%v", err)
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
	return ngapi.Settings{Timeout: t.Timeout, SilentTimeout: t.SilentTimeout, OfferTimeout: t.OfferTimeout,
		FinalTimeout: t.FinalTimeout, DeleteDelay: t.DeleteDelay, MaxSessions: c.engine.MaxSessions()}, nil
}
