// Package testutil starts the real things rtpkit's tests run against: an
// embedded NATS server with JetStream, a redis-server with keyspace
// notifications on, the project's binaries built once per test run, and
// network namespaces with veth pairs and dummy interfaces (root only).
//
// Every helper registers its cleanup with t.Cleanup, stops only what it
// started, by pid, and binds only loopback or namespace-local addresses.
package testutil
