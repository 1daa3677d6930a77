// Package busauth is who may do what on a node's bus: one NATS user per
// daemon (and one for the operator's rtpctl), each authenticated by an nkey
// and allowed only the subjects its daemon publishes and subscribes to. The
// allow lists are built from the pkg/api descriptors and the node-state
// bucket's name, so they follow the contracts. The keys live in files (mode
// 0600, directory 0700), generated once; the server side (public keys and
// permissions) is given to the embedded bus as Users, or rendered as a
// nats-server `authorization` block for Debian's nats-server.
package busauth

import (
	"fmt"
	"slices"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/api/syncapi"
)

// bucketName and callKind are nodestate.BucketName and nodestate.CallKind
// (this package cannot import nodestate, whose tests use testutil, which
// uses this package; a test keeps them equal).
func bucketName(node string) string { return "rtpkit-v2-" + node }

const callKind = "call"

// Operator is the role of rtpctl (client commands and `rtpctl up` itself):
// it may publish and subscribe to everything.
const Operator = "rtpctl"

// Roles are the users of a node's bus, one per daemon plus the operator.
func Roles() []string {
	return []string{portdapi.Daemon, fwdapi.Daemon, ngapi.Daemon, syncapi.Daemon, Operator}
}

// Permissions are a user's allow lists. Responses lets the user publish the
// reply to a request it received (micro service replies, JetStream flow
// control) without naming reply subjects.
type Permissions struct {
	Publish   []string
	Subscribe []string
	Responses bool
}

// subject is anything with a subject on a node's bus: api.Endpoint and
// api.Event values.
type subject interface{ Subject(node string) string }

// role says what one daemon does on the bus, by descriptor.
type role struct {
	serves     []subject // endpoints it answers
	requests   []subject // endpoints it calls
	publishes  []subject // events it sends
	subscribes []subject // events it takes
	writesKV   bool      // it writes call records
}

func roleOf(name string) (role, bool) {
	switch name {
	case portdapi.Daemon:
		return role{
			serves: []subject{portdapi.LeaseEndpoint, portdapi.ReturnEndpoint, portdapi.BindEndpoint,
				portdapi.ReleaseEndpoint, portdapi.ListEndpoint},
			publishes:  []subject{portdapi.StartedEvent, portdapi.RevokedEvent},
			subscribes: []subject{portdapi.FreeEvent},
		}, true
	case fwdapi.Daemon:
		return role{publishes: []subject{fwdapi.ActivityEvent, fwdapi.DTMFEvent}, subscribes: []subject{ngapi.PlayDTMFEvent}}, true
	case ngapi.Daemon:
		return role{
			serves:     []subject{ngapi.NGEndpoint, ngapi.SessionsEndpoint, ngapi.TerminateEndpoint, ngapi.SettingsEndpoint},
			requests:   []subject{portdapi.LeaseEndpoint, portdapi.ReturnEndpoint, portdapi.ListEndpoint},
			publishes:  []subject{portdapi.FreeEvent, ngapi.PlayDTMFEvent},
			subscribes: []subject{portdapi.StartedEvent, portdapi.RevokedEvent, fwdapi.ActivityEvent},
			writesKV:   true,
		}, true
	case syncapi.Daemon:
		return role{
			serves: []subject{syncapi.KeyspaceEndpoint, syncapi.ActiveEndpoint, syncapi.StandbyEndpoint,
				syncapi.StatusEndpoint},
			requests:   []subject{portdapi.BindEndpoint},
			subscribes: []subject{fwdapi.ActivityEvent},
			writesKV:   true,
		}, true
	}
	return role{}, false
}

// For returns the permissions of role name on node's bus.
func For(name, node string) (Permissions, error) {
	if name == Operator {
		return Permissions{Publish: []string{">"}, Subscribe: []string{">"}, Responses: true}, nil
	}
	r, ok := roleOf(name)
	if !ok {
		return Permissions{}, fmt.Errorf("bus role %q: unknown (want one of %v)", name, Roles())
	}
	var p Permissions
	p.Responses = true
	sub := func(s ...string) { p.Subscribe = append(p.Subscribe, s...) }
	pub := func(s ...string) { p.Publish = append(p.Publish, s...) }

	// Every daemon answers its ping and the node's, as a micro service
	// ($SRV discovery), and gets replies (and its watches) on an inbox.
	sub(api.Ping(name).Subject(node), api.NodePing.Subject(node), "$SRV.>", "_INBOX.>")
	for _, e := range r.serves {
		sub(e.Subject(node))
	}
	for _, e := range r.subscribes {
		sub(e.Subject(node))
	}
	for _, e := range r.requests {
		pub(e.Subject(node))
	}
	for _, e := range r.publishes {
		pub(e.Subject(node))
	}

	// Node state: every daemon reads (and may create) the node's bucket;
	// only the writers put and delete call records.
	bucket := bucketName(node)
	stream := "KV_" + bucket
	pub("$JS.API.INFO",
		"$JS.API.STREAM.INFO."+stream,
		"$JS.API.STREAM.CREATE."+stream,
		"$JS.API.STREAM.MSG.GET."+stream,
		"$JS.API.DIRECT.GET."+stream,
		"$JS.API.DIRECT.GET."+stream+".>",
		"$JS.API.CONSUMER.CREATE."+stream,
		"$JS.API.CONSUMER.CREATE."+stream+".>",
		"$JS.API.CONSUMER.INFO."+stream+".>",
		"$JS.API.CONSUMER.DELETE."+stream+".>")
	if r.writesKV {
		pub("$KV."+bucket+"."+callKind+".>", "$JS.API.STREAM.PURGE."+stream)
	}
	p.Publish = slices.Compact(slices.Sorted(slices.Values(p.Publish)))
	p.Subscribe = slices.Compact(slices.Sorted(slices.Values(p.Subscribe)))
	return p, nil
}
