// Package bus connects rtpkit's processes to their node-local NATS bus.
//
// Every subject is namespaced and versioned by node: rtpkit.v1.<node>.<...>.
// Messages are Go structs encoded as JSON, so that `nats sub 'rtpkit.>'`
// shows them as they are. Request/reply endpoints are NATS micro services
// (discoverable with `nats micro ls`); errors travel in the micro error
// headers and come back to callers as *Error values.
package bus
