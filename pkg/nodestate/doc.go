// Package nodestate is the node's single source of truth: typed records
// (one kind today, the calls) in a NATS JetStream key-value bucket, with
// get / put / publish / delete (conditional on a revision if asked) /
// list / watch.
//
// Every rtpkit daemon is a reconciler: on start it reads the records it
// cares about, then follows their changes with a watcher. The bucket is
// rtpkit-v1-<node>, on file storage (under the bus's store directory, i.e.
// --state-dir for the embedded bus), so a bus restart keeps it. Keys are
// "<kind>.<id>", with the id escaped so that any byte string (a SIP Call-ID)
// is one key token.
package nodestate
