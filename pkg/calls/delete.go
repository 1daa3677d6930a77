package calls

import (
	"context"
	"log/slog"
	"time"
)

// DeleteResult is what a delete did.
type DeleteResult struct {
	// Stats are the call's statistics when a tag matched (nil otherwise).
	Stats *CallStats
	// Warning is set when nothing matched and the delete was not fatal.
	Warning string
}

// Delete handles an ng delete (reference §1.8).
func (e *Engine) Delete(req *Request) (DeleteResult, error) {
	if req.CallID == "" {
		return DeleteResult{}, ErrNoCallID
	}
	notFound := func() (DeleteResult, error) {
		if req.flag("fatal") {
			return DeleteResult{}, ErrDeleteNotFound
		}
		return DeleteResult{Warning: ErrDeleteNotFound.Error()}, nil
	}
	en := e.lock(req.CallID)
	if en == nil {
		return notFound()
	}
	defer en.mu.Unlock()
	c := en.c
	delay := req.DeleteDelay
	if delay < 0 {
		delay = e.Timers().DeleteDelay
	}
	now := e.now()

	if req.FromTag == "" {
		if delay > 0 {
			c.deleteAt = now.Add(time.Duration(delay) * time.Second)
			e.save(c)
			return DeleteResult{}, nil
		}
		e.end(en, "regular", now)
		return DeleteResult{}, nil
	}

	var l *leg
	if req.ToTag == "" && req.ViaBranch != "" {
		for _, x := range c.legs {
			if x.viaBranch == req.ViaBranch {
				l = x
				break
			}
		}
	}
	if l == nil {
		if req.ToTag != "" {
			l = c.legByTag(req.ToTag)
			if l == nil {
				// The to-tag is unknown but the from-tag's peer was never
				// tagged: the from-tag party goes.
				if f := c.legByTag(req.FromTag); f != nil && (f.peer == nil || f.peer.tag == "") {
					l = f
				}
			}
		} else {
			l = c.legByTag(req.FromTag)
		}
	}
	if l == nil {
		return notFound()
	}
	stats := e.stats0(c, "", "")
	if delay > 0 {
		l.deleteAt = now.Add(time.Duration(delay) * time.Second)
		if l.peer != nil {
			l.peer.deleteAt = l.deleteAt
		}
		e.save(c)
		return DeleteResult{Stats: stats}, nil
	}
	e.dropLeg(en, l, now)
	return DeleteResult{Stats: stats}, nil
}

// dropLeg destroys a party at once; the call goes when fewer than two
// tagged parties remain and no branches are pending.
func (e *Engine) dropLeg(en *entry, l *leg, now time.Time) {
	c := en.c
	before := c.clone()
	defer func() {
		// The removed parties' pairs; if the call ended, end freed the rest.
		if dropped := droppedPairs(before, c); len(dropped) > 0 {
			e.cfg.Ports.Free(dropped)
		}
	}()
	peer := l.peer
	c.removeLeg(l)
	if peer != nil && peer.tag == "" {
		c.removeLeg(peer)
	}
	tagged, branches := 0, 0
	for _, x := range c.legs {
		if x.tag != "" {
			tagged++
		}
		if x.viaBranch != "" && x.tag == "" {
			branches++
		}
	}
	if tagged < 2 && branches == 0 {
		e.end(en, "regular", now)
		return
	}
	e.save(c)
}

// end destroys a locked call for reason (regular, forced, timeout, silent
// timeout, offer timeout, final timeout) and logs its summary line.
func (e *Engine) end(en *entry, reason string, now time.Time) {
	c := en.c
	dur := now.Sub(c.created)
	e.stats.ended.Add(1)
	e.stats.durationSum.Add(dur.Microseconds())
	ms := dur.Milliseconds()
	e.stats.durationSquares.Add(ms * ms)
	switch reason {
	case "regular":
		e.stats.regular.Add(1)
	case "forced":
		e.stats.forced.Add(1)
	case "timeout":
		e.stats.timeout.Add(1)
	case "silent timeout":
		e.stats.silentTimeout.Add(1)
	case "offer timeout":
		e.stats.offerTimeout.Add(1)
	case "final timeout":
		e.stats.finalTimeout.Add(1)
	}
	// One line per call, rtpengine's CDR: who, why, how long, and per
	// party what it sent (cdr.go). Built only when it is logged: it is
	// on the path of every delete.
	if e.log.Enabled(context.Background(), slog.LevelInfo) {
		var tags []string
		for _, l := range c.legs {
			tags = append(tags, l.tag)
		}
		e.log.Info("call ended", append([]any{"call", c.id, "reason", reason, "duration", dur.Round(time.Millisecond),
			"tags", tags, "foreign", c.foreign, "created", c.created.UTC().Format(time.RFC3339)}, e.cdr(c)...)...)
	}
	e.remove(en)
	if pairs := c.pairs(); len(pairs) > 0 && !c.foreign {
		e.cfg.Ports.Free(pairs)
	}
}
