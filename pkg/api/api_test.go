package api_test

import (
	"testing"

	"github.com/rtpkit/rtpkit/pkg/api"
)

func TestSubjects(t *testing.T) {
	cases := []struct {
		name, got, want string
	}{
		{"subject", api.Subject("n1", "portd", "lease"), "rtpkit.v1.n1.portd.lease"},
		{"ping", api.Ping("portd").Subject("n1"), "rtpkit.v1.n1.portd.ping"},
		{"ping name", api.Ping("portd").Name(), "ping"},
		{"node ping", api.NodePing.Subject("n1"), "rtpkit.v1.n1.ping"},
		{"node ping name", api.NodePing.Name(), "node-ping"},
		{"event", api.Event[api.Empty]{Daemon: "rtp-fwd", Verb: "activity"}.Subject("n1"), "rtpkit.v1.n1.rtp-fwd.activity"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
}
