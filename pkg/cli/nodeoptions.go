package cli

// NodeOptions names every option some rtpkit daemon (or `rtpctl up`) takes.
// A daemon reading a config file shared by the whole node skips the lines of
// options that belong to its siblings and still refuses unknown names.
// pkg/rtpctl's tests check that this list matches the daemons' options.
var NodeOptions = map[string]bool{
	// every daemon
	"node-id": true, "nats-url": true, "nats-creds": true, "nats-nkey-file": true, "nats-connect-timeout": true,
	"log-level": true, "log-format": true, "scheduling": true, "priority": true,
	// Prometheus /metrics, one option per daemon (pkg/metrics)
	"metrics-portd": true, "metrics-rtp-fwd": true, "metrics-ng-ctl": true, "metrics-redis-sync": true,
	// portd
	"interface": true, "interface-ports": true, "port-min": true, "port-max": true,
	"port-quarantine": true, "tos": true, "socket-buffer": true, "fd-reserve": true, "runtime-dir": true,
	// rtp-fwd
	"worker-id": true, "loops": true, "fast-path": true, "fast-path-pin-dir": true, "endpoint-learning": true, "allow-loopback-media": true, "dtmf-events": true, "dtmf-log-dest": true,
	// ng-ctl
	"listen-ng": true, "listen-tcp-ng": true, "listen-http": true, "timeout": true, "silent-timeout": true,
	"offer-timeout": true, "final-timeout": true, "delete-delay": true, "max-sessions": true, "max-media": true, "max-legs": true, "ng-max-conns": true, "ng-max-conns-per-client": true, "state-purge-age": true, "state-purge-interval": true, "state-max-bytes": true,
	"active-switchover": true, // and redis-sync
	// ng-ctl and rtp-fwd: the node's DTLS certificate (pkg/dtlscert)
	"dtls-cert-dir": true, "dtls-cert": true, "dtls-key": true, "dtls-cert-cipher": true, "dtls-signature": true,
	// redis-sync
	"redis": true, "redis-ca": true, "subscribe-keyspace": true, "redis-expires": true, "redis-connect-timeout": true, "redis-cmd-timeout": true, "redis-queue": true, "redis-audit-interval": true,
	// rtpctl up
	"nats-listen": true, "state-dir": true, "bin-dir": true, "ready-timeout": true,
}

// ClientOptions names the options of rtpctl's client commands that a config
// file shared by the node may hold too (`wait 5s`); the daemons skip them
// like a sibling's.
var ClientOptions = map[string]bool{"wait": true, "json": true}
