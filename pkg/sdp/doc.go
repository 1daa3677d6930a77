// Package sdp parses SDP bodies and rewrites them in place the way
// rtpengine's ng control protocol does.
//
// rtpengine does not re-render an SDP: it copies the input, edits a few
// fields (o= and c= addresses, the m= port, protocol and format list),
// deletes the attribute lines it owns and appends a generated block at the
// end of every media section. Clients compare the result byte for byte, so
// this package keeps every input line with its own line ending and only
// touches what the rules say.
//
// The call model reads facts from a parsed [Session] (ports, addresses,
// payload types, directions), decides what to advertise and hands a [Plan]
// to [Rewrite]. This package owns the text; it holds no call state.
//
// Parser and writer follow rtpengine mr10.5 (daemon/sdp.c): which lines are
// accepted, which attributes are recognised (an attribute that rtpengine
// fails to parse is treated as unknown and copied verbatim), which are
// stripped at session and media level, and the order of the generated tail.
package sdp
