// Package fdpass passes open file descriptors, with metadata, between
// processes over a Unix SOCK_SEQPACKET socket (SCM_RIGHTS).
//
// portd listens with [Listen]; each forwarding worker connects with [Dial].
// The listener checks every peer's credentials (SO_PEERCRED) against a
// [Policy] before returning the connection from [Listener.Accept], and its
// socket file has mode 0600 from the moment it exists.
//
// Two layers are offered on a [Conn]:
//
//   - [Conn.WriteMsg] and [Conn.ReadMsg] send and receive one message: at
//     least one byte of caller-defined metadata and up to [MaxFDs]
//     descriptors, which always arrive together.
//   - [Conn.Send] and [Conn.Recv] carry a list of [Item] values, each one
//     metadata with an optional descriptor. Send packs as many items as fit
//     into each message (at most [MaxFDs] descriptors and [MaxMsgSize]
//     bytes), in a small binary frame that records which item owns which
//     descriptor, so every descriptor arrives in the same message as its
//     metadata. Items without a descriptor ([NoFD]) carry requests and
//     acknowledgements.
//
// # Ownership
//
// Sending never closes or takes over the sender's descriptors: the kernel
// gives the receiver new descriptors for the same open files, and the
// sender keeps (and eventually closes) its own. The sender must keep them
// open until the send call returns. Received descriptors belong to the
// receiver, are close-on-exec, and share the sender's open file (and so its
// flags, such as O_NONBLOCK). When a receive call returns an error, every
// descriptor that arrived with the failed message has already been closed.
// A received descriptor that the receiver does not want must be closed by
// it ([CloseItems]).
package fdpass
