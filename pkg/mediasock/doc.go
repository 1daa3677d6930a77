// Package mediasock creates media sockets bound to one exact local address.
//
// portd is the only process that binds media sockets. It binds each one with
// [Bind] (or a pair with [BindPair]), keeps its own [Socket] open for as long
// as the stream is allocated, and hands duplicates ([Socket.Dup]) to the
// forwarding worker that serves the call. The worker turns a received
// descriptor back into a [Socket] with [FromFD], and into a [net.PacketConn]
// with [Socket.PacketConn] if it wants the standard library's API.
//
// Every socket is bound to a specific address and port: wildcard addresses
// (0.0.0.0, ::) and port 0 are refused, so the same port number can be in use
// on several local addresses at once and the kernel never picks the address
// or port behind portd's back. IPv6 sockets are IPv6-only (IPV6_V6ONLY=1);
// IPv4-mapped IPv6 addresses are unmapped and bound as IPv4.
//
// Ownership: a [Socket] owns exactly one descriptor and closes it in
// [Socket.Close]. [Socket.Dup] and [Socket.PacketConn] return new,
// independent descriptors that the caller owns; closing them never affects
// the Socket, and closing the Socket never affects them (the kernel socket
// lives until its last descriptor, in any process, is closed).
//
// Only UDP exists today. [Socket.Network] reports the transport so that RTP
// over TCP can be added later behind the same type without changing callers
// that merely hold, duplicate and pass sockets around.
package mediasock
