package calls

// block DTMF and unblock DTMF: a party's RFC 4733 events stop (or start
// again) reaching the other side; rtp-fwd still reports them.

// BlockDTMF blocks (block true) or unblocks the DTMF of the party with
// req's from-tag, or of every party of the call without one.
func (e *Engine) BlockDTMF(req *Request, block bool) error {
	if req.CallID == "" {
		return ErrNoCallID
	}
	en := e.lock(req.CallID)
	if en == nil {
		return ErrUnknownCall
	}
	defer en.mu.Unlock()
	c := en.c
	var legs []*leg
	if req.FromTag != "" {
		l := c.legByTag(req.FromTag)
		if l == nil {
			return ErrDeleteNotFound
		}
		legs = append(legs, l)
	} else {
		legs = c.legs
	}
	for _, l := range legs {
		for _, m := range l.medias {
			m.blockDTMF = block
		}
	}
	e.save(c)
	return nil
}
