package calls

// Limits bound what one offer or answer and one call may hold, so that a
// single large INVITE or a storm of forks cannot take a node's ports: each
// media section of an SDP takes a port pair per party, and each leg (a
// fork: another to-tag or via-branch) takes its own.
type Limits struct {
	// MaxMedia is the most media sections (m= lines) an SDP may have
	// (default DefaultMaxMedia); more is ErrTooManyMedia.
	MaxMedia int
	// MaxLegs is the most legs (parties, one per SIP tag) a call may have
	// (default DefaultMaxLegs); an offer or answer that would add one more
	// is ErrTooManyLegs, and changes nothing.
	MaxLegs int
}

// The default limits: far above what SIP endpoints send (audio, video,
// a few more for BFCP or T.38; forking to a few dozen devices), far below
// what would take a node's port range.
const (
	DefaultMaxMedia = 32
	DefaultMaxLegs  = 64
)

// withDefaults fills unset limits.
func (l Limits) withDefaults() Limits {
	if l.MaxMedia <= 0 {
		l.MaxMedia = DefaultMaxMedia
	}
	if l.MaxLegs <= 0 {
		l.MaxLegs = DefaultMaxLegs
	}
	return l
}
