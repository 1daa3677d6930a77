package calls

// The parties of a message: which legs of a call send and receive an
// offer or an answer, created or found by tag and via-branch.

// dialogue finds the sender and receiver parties of a message.
func (e *Engine) dialogue(c *call, req *Request, offer bool) (sender, receiver *leg, err error) {
	now := e.now()
	fromTag, toTag := req.FromTag, req.ToTag
	if !offer {
		// The answer's sender is the to-tag party.
		a := c.legByTag(fromTag)
		if a == nil {
			return nil, nil, ErrUnknownCall
		}
		b := c.legByTag(toTag)
		if b == nil {
			b = untaggedPeer(c, a, req.ViaBranch)
			if b == nil {
				// Another fork answers: a new party in dialogue with the offerer.
				b = c.newLeg(now)
				b.viaBranch = req.ViaBranch
				b.family = a.family
				if a.peer != nil {
					b.iface = a.peer.iface
				}
			}
			b.tag = toTag
		}
		a.peer, b.peer = b, a
		return b, a, nil
	}
	a := c.legByTag(fromTag)
	if a == nil {
		a = c.newLeg(now)
		a.tag = fromTag
	}
	var b *leg
	switch {
	case toTag != "":
		if b = c.legByTag(toTag); b == nil {
			b = untaggedPeer(c, a, req.ViaBranch)
			if b == nil {
				b = c.newLeg(now)
			}
			b.tag = toTag
		}
	default:
		b = untaggedPeer(c, a, req.ViaBranch)
		if b == nil && a.peer != nil && (req.ViaBranch == "" || a.peer.viaBranch == req.ViaBranch || a.peer.viaBranch == "") {
			b = a.peer
		}
		if b == nil {
			b = c.newLeg(now)
		}
	}
	if b.viaBranch == "" {
		b.viaBranch = req.ViaBranch
	}
	a.peer, b.peer = b, a
	return a, b, nil
}

// untaggedPeer finds the party that an offer from a created and that has
// no tag yet, on the given via-branch (any, if empty).
func untaggedPeer(c *call, a *leg, via string) *leg {
	for _, l := range c.legs {
		if l.tag != "" || l == a {
			continue
		}
		if l.peer != a && l.peer != nil {
			continue
		}
		if via == "" || l.viaBranch == "" || l.viaBranch == via {
			return l
		}
	}
	return nil
}
