package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/api/syncapi"
)

var update = flag.Bool("update", false, "rewrite testdata/wire from the current types")

// TestWireShape pins the JSON of every contract message, fully populated
// and empty, to testdata/wire: a change of a field name, tag or omit rule
// is a change of the wire format between processes of different versions,
// and must show up in review as a changed golden file.
func TestWireShape(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ap := netip.MustParseAddrPort("192.0.2.10:30000")
	ap2 := netip.MustParseAddrPort("192.0.2.10:30001")
	peer := netip.MustParseAddrPort("198.51.100.7:4000")
	pair := portdapi.Pair{Interface: "pub", RTP: ap, RTCP: ap2, Advertised: netip.MustParseAddr("203.0.113.1"), Gen: 42}
	cases := map[string]any{
		"api.Hello":               api.Hello{Node: "n1", Daemon: "portd", PID: 7, Version: "1.0.0", Started: t0},
		"portdapi.Pair":           pair,
		"portdapi.Pair.empty":     portdapi.Pair{},
		"portdapi.LeaseRequest":   portdapi.LeaseRequest{Holder: "ng-ctl", Interface: "pub", Family: 4, Count: 32, Single: true},
		"portdapi.LeaseReply":     portdapi.LeaseReply{Pairs: []portdapi.Pair{pair}, Instance: "abc", Capacity: 500},
		"portdapi.ReturnRequest":  portdapi.ReturnRequest{Holder: "ng-ctl", RTP: []netip.AddrPort{ap}, All: true},
		"portdapi.ReturnReply":    portdapi.ReturnReply{Returned: 3},
		"portdapi.BindRequest":    portdapi.BindRequest{Call: "c1", Pairs: []portdapi.Pair{pair}},
		"portdapi.BindReply":      portdapi.BindReply{Pairs: []portdapi.Pair{pair}},
		"portdapi.ReleaseRequest": portdapi.ReleaseRequest{Locals: []netip.AddrPort{ap}},
		"portdapi.ReleaseReply":   portdapi.ReleaseReply{Released: 1},
		"portdapi.Free":           portdapi.Free{Pairs: []portdapi.Pair{pair}},
		"portdapi.Started":        portdapi.Started{Instance: "abc"},
		"portdapi.Revoked":        portdapi.Revoked{Holder: "ng-ctl", Pairs: []portdapi.Pair{pair}},
		"portdapi.ListReply": portdapi.ListReply{
			Interfaces: []portdapi.InterfaceStatus{{Name: "pub", Addresses: []portdapi.AddressStatus{{
				Local: ap.Addr(), Advertised: netip.MustParseAddr("203.0.113.1"), PortMin: 30000, PortMax: 39999,
				Used: 4, Free: 9990, Quarantined: 2, Leased: 1, Assigned: 1, Present: true}}}},
			Sockets: 4, FDLimit: 1024, Workers: []portdapi.WorkerStatus{{ID: "0", PID: 9, Sockets: 4, Since: t0}}, Instance: "abc"},
		"fwdapi.Activity": fwdapi.Activity{Worker: "0", Full: true, Streams: []fwdapi.StreamActivity{{
			Local: ap, LastPacket: t0, Packets: 10, Bytes: 1720, Errors: 1, Endpoint: peer, Confirmed: true, SSRC: 0x1234,
			KernelDrops: 2, Offloaded: true, FastPathPackets: 5}}, Seq: 7, Part: 2, Parts: 3},
		"fwdapi.StreamActivity.empty": fwdapi.StreamActivity{},
		"ngapi.SessionsRequest":       ngapi.SessionsRequest{Which: ngapi.WhichForeign, Call: "c1"},
		"ngapi.SessionsReply": ngapi.SessionsReply{Sessions: []ngapi.Session{{ID: "c1", Owner: "n1", Foreign: true,
			Partition: "db:3", Created: t0, LastSignal: t0, DeleteAt: t0, Tags: []string{"a", "b"}}}},
		"ngapi.Session.empty":     ngapi.Session{},
		"ngapi.TerminateRequest":  ngapi.TerminateRequest{Call: "c1", Which: ngapi.WhichAll},
		"ngapi.TerminateReply":    ngapi.TerminateReply{Terminated: []string{"c1"}},
		"ngapi.Settings":          ngapi.Settings{Timeout: 60, SilentTimeout: 3600, OfferTimeout: 3600, FinalTimeout: 0, DeleteDelay: 30, MaxSessions: -1},
		"ngapi.SettingsRequest":   ngapi.SettingsRequest{Set: map[string]int{"timeout": 5}},
		"syncapi.KeyspaceRequest": syncapi.KeyspaceRequest{Op: "add", DB: 3},
		"syncapi.KeyspaceReply":   syncapi.KeyspaceReply{DBs: []int{1, 3}, Changed: true, Removed: 2},
		"syncapi.OwnershipReply":  syncapi.OwnershipReply{Calls: 4},
		"syncapi.Status":          syncapi.Status{Enabled: true, Redis: "127.0.0.1:6379", Own: 1, Followed: []int{2}, Counters: syncapi.Counters{Writes: 1, WriteErrors: 2, Restores: 3, Removals: 4, Resyncs: 5, Dropped: 6, Queued: 7, Rejected: 8}},
		"syncapi.Status.empty":    syncapi.Status{},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "wire", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("wire shape changed:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestEndpointSubjects pins every endpoint's and event's subject.
func TestEndpointSubjects(t *testing.T) {
	cases := []struct{ got, want string }{
		{portdapi.LeaseEndpoint.Subject("n"), "rtpkit.v1.n.portd.lease"},
		{portdapi.ReturnEndpoint.Subject("n"), "rtpkit.v1.n.portd.return"},
		{portdapi.BindEndpoint.Subject("n"), "rtpkit.v1.n.portd.bind"},
		{portdapi.ReleaseEndpoint.Subject("n"), "rtpkit.v1.n.portd.release"},
		{portdapi.ListEndpoint.Subject("n"), "rtpkit.v1.n.portd.list"},
		{portdapi.FreeEvent.Subject("n"), "rtpkit.v1.n.portd.free"},
		{portdapi.StartedEvent.Subject("n"), "rtpkit.v1.n.portd.started"},
		{portdapi.RevokedEvent.Subject("n"), "rtpkit.v1.n.portd.revoked"},
		{fwdapi.ActivityEvent.Subject("n"), "rtpkit.v1.n.rtp-fwd.activity"},
		{ngapi.NGEndpoint.Subject("n"), "rtpkit.v1.n.ng-ctl.ng"},
		{ngapi.SessionsEndpoint.Subject("n"), "rtpkit.v1.n.ng-ctl.sessions"},
		{ngapi.TerminateEndpoint.Subject("n"), "rtpkit.v1.n.ng-ctl.terminate"},
		{ngapi.SettingsEndpoint.Subject("n"), "rtpkit.v1.n.ng-ctl.settings"},
		{syncapi.KeyspaceEndpoint.Subject("n"), "rtpkit.v1.n.redis-sync.keyspace"},
		{syncapi.ActiveEndpoint.Subject("n"), "rtpkit.v1.n.redis-sync.active"},
		{syncapi.StandbyEndpoint.Subject("n"), "rtpkit.v1.n.redis-sync.standby"},
		{syncapi.StatusEndpoint.Subject("n"), "rtpkit.v1.n.redis-sync.status"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}
