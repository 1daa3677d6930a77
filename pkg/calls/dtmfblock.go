package calls

// block DTMF and unblock DTMF: a party's RFC 4733 events stop (or start
// again) reaching the other side; rtp-fwd still reports them.

// BlockDTMF blocks (block true) or unblocks the DTMF of the party with
// req's from-tag, or of every party of the call without one.
func (e *Engine) BlockDTMF(req *Request, block bool) error {
	return e.withParties(req, req.FromTag == "", func(c *call, legs []*leg) error {
		for _, l := range legs {
			for _, m := range l.medias {
				m.blockDTMF = block
			}
		}
		e.save(c)
		return nil
	})
}

// withParties runs fn on the locked call of req with the parties a
// media-control command selects: the one with req's from-tag, or every
// party with all.
func (e *Engine) withParties(req *Request, all bool, fn func(c *call, legs []*leg) error) error {
	if req.CallID == "" {
		return ErrNoCallID
	}
	en := e.lock(req.CallID)
	if en == nil {
		return ErrUnknownCall
	}
	defer en.mu.Unlock()
	switch {
	case all:
		return fn(en.c, en.c.legs)
	case req.FromTag == "":
		return ErrNoFromTag
	}
	l := en.c.legByTag(req.FromTag)
	if l == nil {
		return ErrDeleteNotFound
	}
	return fn(en.c, []*leg{l})
}
