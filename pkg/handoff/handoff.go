// Package handoff is the socket hand-off between portd and the forwarding
// workers: the messages they exchange over portd's Unix SOCK_SEQPACKET
// socket (JSON metadata, one socket descriptor per item, see package
// fdpass), and the worker's side of it.
//
// A worker connects and says hello with its id; it then hands back a copy of
// every socket it already holds (adopt), so that a restarted portd gets its
// sockets back instead of losing the ports; synced ends that. portd then
// sends the sockets of every call assigned to the worker (add), and later
// adds and removes as calls come and go. All sockets of one call go to one
// worker. A worker that reconnects gets all its sockets again.
package handoff

import (
	"fmt"
	"net/netip"
)

// SocketName is the file name of portd's hand-off socket in the runtime dir.
const SocketName = "portd.sock"

// Ops of Msg.
const (
	OpHello  = "hello"  // worker → portd: Worker, PID
	OpAdopt  = "adopt"  // worker → portd: a socket it holds (with its fd)
	OpSynced = "synced" // worker → portd: end of hello and adopts
	OpAdd    = "add"    // portd → worker: a socket to serve (with its fd)
	OpRemove = "remove" // portd → worker: stop serving and close a socket
)

// Msg is the metadata of one hand-off item.
type Msg struct {
	Op      string         `json:"op"`
	Worker  string         `json:"worker,omitempty"`
	PID     int            `json:"pid,omitempty"`
	Local   netip.AddrPort `json:"local,omitzero"`
	Network string         `json:"net,omitempty"`
	Call    string         `json:"call,omitempty"`
}

// Encode returns the JSON form of m.
func (m Msg) Encode() []byte {
	b, err := encodeMsg(&m)
	if err != nil {
		panic(fmt.Sprintf("handoff: encode %+v: %v", m, err)) // only plain fields: cannot fail
	}
	return b
}

// Decode parses one item's metadata.
func Decode(b []byte) (Msg, error) {
	m, err := decodeMsg(b)
	if err != nil {
		return m, fmt.Errorf("handoff: bad message: %w", err)
	}
	switch m.Op {
	case OpHello, OpSynced:
	case OpAdopt, OpAdd, OpRemove:
		if !m.Local.IsValid() {
			return m, fmt.Errorf("handoff: %s without a local address", m.Op)
		}
	default:
		return m, fmt.Errorf("handoff: unknown op %q", m.Op)
	}
	return m, nil
}
