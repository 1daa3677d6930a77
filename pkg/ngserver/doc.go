// Package ngserver carries rtpengine's "ng" control protocol over UDP, TCP
// and HTTP, and keeps the cookie-keyed reply cache that makes retransmitted
// requests idempotent. It only frames messages: the ng engine itself is a
// [Handler] that receives one document (bencode or JSON) and returns the
// reply document.
//
// # Framing
//
// Every transport carries "COOKIE SP DOCUMENT" and answers "COOKIE SP
// REPLY", with the cookie echoed verbatim:
//
//   - UDP: one datagram is one message. A datagram without a space, or
//     starting with a space (empty cookie), is dropped silently and counted
//     as malformed. An empty document after the cookie still reaches the
//     handler (which answers "Invalid data (no payload)"). A datagram that
//     fills the 64 KiB read buffer (or arrives truncated) is answered with
//     an error reply ("Message too large", bencode, or JSON when the
//     document starts with '{') that is neither cached nor passed to the
//     handler; without a cookie it is dropped. Real UDP payloads are at most
//     65527 bytes, so this only guards against the impossible.
//   - TCP: a byte stream without length prefixes. Whitespace (space, tab,
//     CR, LF) between messages is skipped, so on TCP a leading space is not
//     an empty cookie; then the cookie runs up to the first space (which
//     must come within the first [MaxCookieTCP] bytes), and exactly one
//     complete bencode value follows it, its end found with
//     [github.com/rtpkit/rtpkit/pkg/bencode.Split]; a value that is not a
//     dictionary still goes to the handler. A JSON object (first byte '{')
//     is accepted too, its end found with encoding/json (rtpengine 10.5 does
//     not support JSON on TCP). Several messages may arrive in one read and
//     one message may span several reads. A stream that can never become
//     valid, a message longer than [Config.MaxMessage], or no space within
//     [MaxCookieTCP] bytes closes the connection (counted as malformed);
//     the replies to the messages before it are sent first. Messages of one
//     connection are handled one after another and answered in order.
//   - HTTP: "POST /ng" with the message as body; the response body is the
//     framed reply, Content-Type [ContentType] (the request's Content-Type
//     is not checked). "GET /ping" answers "pong\n" as text/plain. Other
//     methods on these paths get 405 with an Allow header; other paths go to
//     [Config.HTTPExtra] (for /metrics, /healthz) or get 404. A body without
//     a cookie gets 400, one over [Config.MaxMessage] gets 413, a request
//     whose handler gave no reply gets 500.
//
// # Reply source address
//
// A UDP reply leaves from the exact local address its request was sent to.
// Sockets bound to one address get this for free. Wildcard listeners
// (0.0.0.0, [::]) receive each request's destination address with
// IP_PKTINFO / IPV6_RECVPKTINFO and set it as the reply's source with the
// same control message (the outgoing interface is left to the routing
// table, except for IPv6 link-local destinations, whose scope needs it).
// An IPv6 listener is IPv6-only: listen on both 0.0.0.0:P and [::]:P to
// serve both families on a port.
//
// # Reply cache
//
// One cache serves all transports of a [Server]. The key is the cookie only
// (not the client's address); the value is the complete framed reply, error
// replies included. An entry lives [Config.CacheTTL] (default 60 s, the upper
// end of rtpengine's 30–60 s two-generation scheme, so any retransmission
// rtpengine would answer from its cache is answered from ours) counted from
// when the reply was stored. Memory is bounded by [Config.CacheMaxEntries]
// and [Config.CacheMaxBytes]; when either is exceeded the oldest replies are
// evicted first. A duplicate that arrives while the first request with its
// cookie is still being handled waits for that answer and gets the same
// bytes: the handler never runs twice for one cookie while its reply is
// cached or pending. A UDP duplicate does not hold a goroutine while it
// waits; at most [MaxWaitersUDP] of them are queued per pending cookie and
// further ones are dropped (the client retransmits again). TCP and HTTP
// duplicates wait in their own goroutine, for as long as their connection
// (HTTP: request) lives. If the handler panics (recovered and logged) or
// returns an empty reply, nothing is cached or sent and the waiting
// duplicates get no answer either: the next retransmission runs the
// handler again. The same happens when a request gives up before its
// handler started (an HTTP client that went away while every slot was busy,
// or shutdown).
//
// # Concurrency and limits
//
// At most [Config.MaxInFlight] handler calls run at once across all
// transports. A UDP listener reads the next datagram while handlers run;
// only when all slots are busy does it stop reading until one frees (the
// kernel's socket buffer then queues the requests), and answers from the
// cache never need a slot. TCP and HTTP connections are capped at
// [Config.MaxConns] per transport (excess connections are accepted and
// closed at once, and counted).
//
// The handler's context is the server's: it ends when the server shuts
// down, not when an HTTP client goes away, so that an operation whose reply
// will be cached for the retransmission is not cut short. On shutdown
// ([Server.Close] or the end of Serve's context) the server stops reading,
// lets running handlers finish and send their replies for up to
// [Config.ShutdownTimeout], then cancels their context and closes
// everything.
package ngserver
