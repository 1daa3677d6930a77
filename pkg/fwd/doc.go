// Package fwd is the forwarding engine of one rtp-fwd worker: it moves RTP
// and RTCP between the legs of calls over UDP sockets that someone else
// bound (portd) and owns.
//
// # Model
//
// A [Stream] is one party's leg on one of our sockets: the party sends to
// Stream.FD, and whatever we send to the party leaves from Stream.FD too
// (symmetric RTP). A stream's Peer is the stream of the party that receives
// what this party sends. So for a call between A and B with proxy sockets
// a and b:
//
//	stream 1: FD a, Signalled = A's SDP endpoint, Peer 2
//	stream 2: FD b, Signalled = B's SDP endpoint, Peer 1
//
// A packet arriving on a (from A) is counted on stream 1 (the ingress stream)
// and sent out of b (stream 2's socket) to stream 2's endpoint, which is B's
// learned source or, before learning, B's signalled endpoint.
//
// RTCP on its own sockets is just another pair of streams with the [RTCP]
// flag. With rtcp-mux ([RTCPMux] on the party's RTP stream) a packet on the
// RTP socket whose second byte is 194–223 (RFC 5761) is RTCP: it goes to the
// peer's RTP stream when the peer muxes too, otherwise to the peer's separate
// RTCP stream (the peer's Stream.RTCP). A separate RTCP stream whose party's
// peer muxes simply names the peer's RTP stream as its Peer. Muxed RTCP is
// counted on the RTP stream it arrived on.
//
// # Endpoint learning
//
// Learning follows rtpengine (see [Learning] and the flags): a stream learns
// only while its own party has a usable signalled endpoint; [Delayed]
// learning lets every packet's source replace the endpoint until
// Config.LearnWindow after Stream.LastSignal and confirms the source of the
// first packet after that; [Heuristic] does the same with the best-ranked
// source seen since the signalling instead of the latest (the SDP's
// address and port, then its address, then its port, then any);
// [Immediate] confirms the first packet's source;
// [Off] and [Asymmetric] always send to the signalled endpoint. After
// confirmation the source of further packets is ignored unless the stream
// has [StrictSource] (mismatching packets are dropped and counted as
// errors) or [MediaHandover] (a new source replaces the endpoint at once).
// Stray RTCP on an RTP socket never takes part in learning. Nothing is sent
// to a party whose signalled endpoint is missing, has port 0 or an
// all-zero address (hold, or a callee that has not answered): such packets
// are dropped without counting an error. Those for a party whose endpoint
// is not known at all yet are first held, up to 64 per loop for 500 ms,
// and sent if the update that brings the endpoint is set meanwhile
// (hold.go): ng-ctl replies before rtp-fwd has the update, and a party
// may send at once to the port the reply advertised.
//
// # SRTP and echo
//
// A stream with SRTPIn has its party's packets authenticated and decrypted
// (SRTP, or SRTCP for RTCP) before anything else looks at them: one that
// fails (wrong key, tampered, replayed within the 128-packet window) is
// dropped and counted in SRTPFailures, and never learned from. A stream
// with SRTPOut has what is sent to its party encrypted. Both use
// github.com/pion/srtp, one context per direction kept while the key stays
// the same; nothing is allocated per packet (TestStepAllocsSRTP). A
// direction whose key is [SRTPPending] (an SRTP party before the answer
// brings that key) passes nothing: neither the party's packets as plain
// RTP nor plain RTP to it (TestSRTPPending). A stream
// with [Echo] sends its party's packets back to it instead of to the peer.
//
// # Threads and the packet path
//
// The engine runs Config.Workers loops. Each loop is a goroutine locked to
// its OS thread that blocks in a raw epoll_pwait (not through the Go
// runtime's syscall path, so sysmon never hands its P away) with a short
// timeout, then serves every ready socket with one recvmmsg of at most
// Config.Batch packets and sends them on with sendmmsg, grouped by egress
// socket. Buffers and message headers are preallocated per loop: the packet
// path allocates nothing and takes no lock. Because a loop keeps its P while
// it waits, [New] makes sure GOMAXPROCS is at least Workers+1 so the rest of
// the process always has a P.
//
// Every stream of a call must be given the same Stream.Call: the call key
// picks the loop, so a packet's egress socket is always served by the loop
// that received it. Control calls ([Engine.Set], [Engine.Remove]) are sent
// to the owning loop through a channel and an eventfd; the loop applies them
// between two epoll waits and the call returns once the loop has applied
// it. [Engine.Stats] reads counters that the loops publish with atomics.
//
// # Ownership
//
// The engine never closes a stream's socket. The caller keeps each
// descriptor open until [Engine.Remove] (or an [Engine.Set] that replaces the
// FD, or [Engine.Close]) has returned: a descriptor closed while still
// registered could leave a stale epoll registration behind when another
// process (portd) holds a duplicate of the same socket.
package fwd
