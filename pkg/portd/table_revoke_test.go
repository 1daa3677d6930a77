package portd

import (
	"errors"
	"log/slog"
	"net"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/ifspec"
	"github.com/rtpkit/rtpkit/pkg/mediasock"
)

func newTestTable(t *testing.T, min, max int) *table {
	t.Helper()
	set, err := ifspec.New(ifspec.Config{Interfaces: []string{"127.0.0.1"}, PortMin: min, PortMax: max})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := newTable(set, mediasock.Options{FreeBind: true}, 0, 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tab.closeAll)
	return tab
}

// TestRevocations: a call that takes a pair leased to a holder and unused
// revokes the lease, unless the holder itself named the pair (a call
// record with the lease's generation).
func TestRevocations(t *testing.T) {
	cases := []struct {
		name string
		// use gives the leased pairs (lease[0], lease[1]) and a fresh pair
		// to the call "c" and returns the revocations and the error.
		use         func(tab *table, lease []portdapi.Pair, fresh portdapi.Pair) ([]portdapi.Revoked, error)
		wantRevoked int // pairs revoked from "ng-ctl"
		wantErr     error
		wantLeased  int // pairs still leased to "ng-ctl" afterwards
	}{
		{name: "bind of a leased pair", wantRevoked: 1, wantLeased: 1,
			use: func(tab *table, lease []portdapi.Pair, _ portdapi.Pair) ([]portdapi.Revoked, error) {
				_, rv, err := tab.bindCall("c", []block{{rtp: lease[0].RTP}})
				return rv, err
			}},
		{name: "bind of a free port", wantRevoked: 0, wantLeased: 2,
			use: func(tab *table, _ []portdapi.Pair, fresh portdapi.Pair) ([]portdapi.Revoked, error) {
				_, rv, err := tab.bindCall("c", []block{{rtp: fresh.RTP}})
				return rv, err
			}},
		{name: "bind of both leases, one named twice", wantRevoked: 2, wantLeased: 0,
			use: func(tab *table, lease []portdapi.Pair, _ portdapi.Pair) ([]portdapi.Revoked, error) {
				_, rv, err := tab.bindCall("c", []block{{rtp: lease[0].RTP}, {rtp: lease[1].RTP}, {rtp: lease[0].RTCP}})
				return rv, err
			}},
		{name: "failed bind takes nothing", wantErr: errInUse, wantLeased: 1,
			use: func(tab *table, lease []portdapi.Pair, _ portdapi.Pair) ([]portdapi.Revoked, error) {
				if _, _, err := tab.bindCall("other", []block{{rtp: lease[1].RTP}}); err != nil {
					t.Fatal(err)
				}
				_, rv, err := tab.bindCall("c", []block{{rtp: lease[0].RTP}, {rtp: lease[1].RTP}})
				return rv, err
			}},
		{name: "record without generation", wantRevoked: 1, wantLeased: 1,
			use: func(tab *table, lease []portdapi.Pair, _ portdapi.Pair) ([]portdapi.Revoked, error) {
				ch, err := tab.syncCall("c", []block{{rtp: lease[0].RTP}})
				return ch.revoked, err
			}},
		{name: "record without generation naming another call's pair", wantErr: errInUse, wantLeased: 1,
			use: func(tab *table, lease []portdapi.Pair, _ portdapi.Pair) ([]portdapi.Revoked, error) {
				if _, err := tab.syncCall("live", []block{{rtp: lease[1].RTP, gen: lease[1].Gen}}); err != nil {
					t.Fatal(err)
				}
				ch, err := tab.syncCall("c", []block{{rtp: lease[1].RTP}})
				if p := tab.lookupLocked(lease[1].RTP); p == nil || p.call != "live" {
					t.Fatalf("pair %s taken from the live call: %+v", lease[1].RTP, p)
				}
				if len(ch.assigned) != 0 || ch.conflicts != 1 {
					t.Fatalf("assigned %d, conflicts %d; want 0, 1", len(ch.assigned), ch.conflicts)
				}
				return ch.revoked, err
			}},
		{name: "record of the holder (lease generation)", wantRevoked: 0, wantLeased: 1,
			use: func(tab *table, lease []portdapi.Pair, _ portdapi.Pair) ([]portdapi.Revoked, error) {
				ch, err := tab.syncCall("c", []block{{rtp: lease[0].RTP, gen: lease[0].Gen}})
				return ch.revoked, err
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tab := newTestTable(t, 37800, 37899)
			lease, _, err := tab.lease("ng-ctl", "", 4, 2, false)
			if err != nil || len(lease) != 2 {
				t.Fatalf("lease: %v %v", lease, err)
			}
			fresh, _, err := tab.lease("other-holder", "", 4, 1, false)
			if err != nil {
				t.Fatal(err)
			}
			// A free port: returned, so that a bind reserves it anew.
			tab.returnLeases("other-holder", nil, true)
			rv, err := tc.use(tab, lease, fresh[0])
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			got := 0
			for _, r := range rv {
				if r.Holder != "ng-ctl" {
					t.Fatalf("revoked from %q", r.Holder)
				}
				for _, p := range r.Pairs {
					if p != lease[0] && p != lease[1] {
						t.Fatalf("revoked %+v, not one of the leases %+v", p, lease)
					}
				}
				got += len(r.Pairs)
			}
			if got != tc.wantRevoked {
				t.Fatalf("revoked %d pairs (%+v), want %d", got, rv, tc.wantRevoked)
			}
			leased := 0
			for _, p := range tab.pairs {
				if p.holder == "ng-ctl" && p.call == "" {
					leased++
				}
			}
			if leased != tc.wantLeased {
				t.Fatalf("%d pairs still leased, want %d", leased, tc.wantLeased)
			}
		})
	}
}

// TestStaleRecordAfterFree: the holder frees a call's pairs (its free
// request overtakes the call's last records on the bus); a record that
// still names them by this run's generation binds nothing, while a record
// naming a generation of an earlier run of portd (a restart) or none (a
// restore) still takes the ports.
func TestStaleRecordAfterFree(t *testing.T) {
	cases := []struct {
		name     string
		gen      func(leased portdapi.Pair) uint64
		wantBind bool
	}{
		{"this run's generation", func(p portdapi.Pair) uint64 { return p.Gen }, false},
		{"an earlier run's generation", func(p portdapi.Pair) uint64 { return 0x1234 << 32 }, true},
		{"no generation", func(p portdapi.Pair) uint64 { return 0 }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tab := newTestTable(t, 17900, 17959)
			tab.startGens(0xabcd << 32)
			lease, _, err := tab.lease("ng-ctl", "", 4, 1, false)
			if err != nil {
				t.Fatal(err)
			}
			if ch, err := tab.syncCall("c", []block{{rtp: lease[0].RTP, gen: lease[0].Gen}}); err != nil || len(ch.assigned) != 1 {
				t.Fatalf("assign: %+v %v", ch, err)
			}
			if freed := tab.free(lease); len(freed) != 1 {
				t.Fatalf("freed %d pairs", len(freed))
			}
			ch, err := tab.syncCall("c", []block{{rtp: lease[0].RTP, gen: tc.gen(lease[0])}})
			if err != nil {
				t.Fatal(err)
			}
			bound := tab.lookupLocked(lease[0].RTP) != nil
			if bound != tc.wantBind || (len(ch.assigned) == 1) != tc.wantBind || (ch.stale == 1) == tc.wantBind {
				t.Fatalf("after free: bound %v, change %+v; want bound %v", bound, ch, tc.wantBind)
			}
			if want := map[bool]int{true: 2, false: 0}[tc.wantBind]; tab.nsock != want {
				t.Fatalf("%d sockets open, want %d", tab.nsock, want)
			}
		})
	}
}

// TestBusyPortNotLost: a port another socket holds (another program, or a
// worker still closing its copy of a released socket) is skipped, and can
// be leased again once it is free: it is not lost for the life of portd.
func TestBusyPortNotLost(t *testing.T) {
	tab := newTestTable(t, 17960, 17963) // two pairs, below the ephemeral range (no client socket of a concurrent test can hold them)
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 17960})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	got, _, err := tab.lease("ng-ctl", "", 4, 2, false)
	if err != nil || len(got) != 1 || got[0].RTP.Port() != 17962 {
		t.Fatalf("lease beside a busy pair: %+v %v", got, err)
	}
	if _, _, err := tab.lease("ng-ctl", "", 4, 1, false); err == nil {
		t.Fatal("leased a pair while the other one is busy")
	}
	_ = other.Close()
	again, _, err := tab.lease("ng-ctl", "", 4, 1, false)
	if err != nil || len(again) != 1 || again[0].RTP.Port() != 17960 {
		t.Fatalf("the pair freed by the other socket: %+v %v", again, err)
	}
}
