// Package nodestate is the node's single source of truth: typed records
// (one kind today, the calls) in a NATS JetStream key-value bucket, with
// get / put / publish / delete (conditional on a revision if asked) /
// list / watch.
//
// Every rtpkit daemon is a reconciler: on start it reads the records it
// cares about, then follows their changes with a watcher. The bucket is
// rtpkit-v2-<node>, on file storage (under the bus's store directory, i.e.
// --state-dir for the embedded bus), so a bus restart keeps it. Keys are
// "<kind>.<token>", the token a fixed-length hash of the id (KeyToken), so
// that any id up to MaxIDLen bytes makes a short key; the id itself is in
// the record, and in a delete marker's body.
package nodestate
