package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

type echoReq struct {
	Text string `json:"text"`
}

type echoResp struct {
	Text string `json:"text"`
	Len  int    `json:"len"`
}

// The test service's endpoint and event.
var (
	say  = api.Endpoint[echoReq, echoResp]{Daemon: "echo", Verb: "say"}
	note = api.Event[echoReq]{Daemon: "echo", Verb: "note"}
)

func TestRequestReplyRoundTrip(t *testing.T) {
	srv := testutil.StartNATS(t)
	server := testutil.Connect(t, srv.URL(), "n1", "server")
	client := testutil.Connect(t, srv.URL(), "n1", "client")

	svc, err := bus.NewService(server, "echo", "test echo service")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	err = bus.Handle(svc, say, func(_ context.Context, r echoReq) (echoResp, error) {
		switch r.Text {
		case "missing":
			return echoResp{}, bus.Errorf(bus.CodeNotFound, "no such thing %q", r.Text)
		case "boom":
			return echoResp{}, errors.New("plain failure")
		}
		return echoResp{Text: r.Text, Len: len(r.Text)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// No ping before Ready: whoever sees the ping may use every endpoint.
	if _, err := bus.Request(ctx, client, api.Ping("echo"), api.Empty{}); !errors.Is(err, bus.ErrNoResponders) {
		t.Fatalf("ping before Ready: %v, want no responders", err)
	}
	if err := svc.Ready(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		text     string
		wantCode string
		wantMsg  string
	}{
		{name: "ok", text: "hello"},
		{name: "typed error keeps its code", text: "missing", wantCode: bus.CodeNotFound, wantMsg: `no such thing "missing"`},
		{name: "plain error is internal", text: "boom", wantCode: bus.CodeInternal, wantMsg: "plain failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := bus.Request(ctx, client, say, echoReq{Text: tt.text})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("request: %v", err)
				}
				if resp.Text != tt.text || resp.Len != len(tt.text) {
					t.Fatalf("reply %+v", resp)
				}
				return
			}
			if !bus.IsCode(err, tt.wantCode) {
				t.Fatalf("err = %v, want code %s", err, tt.wantCode)
			}
			if err.Error() != tt.wantMsg {
				t.Fatalf("message %q, want %q", err.Error(), tt.wantMsg)
			}
		})
	}

	// Every daemon answers its ping, and the node-wide ping collects all.
	hello, err := bus.Request(ctx, client, api.Ping("echo"), api.Empty{})
	if err != nil || hello.Daemon != "echo" || hello.Node != "n1" || hello.PID == 0 {
		t.Fatalf("ping: %+v %v", hello, err)
	}
	svc2, err := bus.NewService(server, "other", "second service")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc2.Stop() })
	if err := svc2.Ready(); err != nil {
		t.Fatal(err)
	}
	all, err := bus.Scatter(ctx, client, api.NodePing, api.Empty{}, 300*time.Millisecond)
	if err != nil || len(all) != 2 {
		t.Fatalf("node ping: %d answers (%+v), err %v", len(all), all, err)
	}
}

func TestRequestWithoutResponder(t *testing.T) {
	srv := testutil.StartNATS(t)
	c := testutil.Connect(t, srv.URL(), "n1", "client")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := bus.Request(ctx, c, api.Ping("portd"), api.Empty{})
	if !errors.Is(err, bus.ErrNoResponders) {
		t.Fatalf("err = %v, want ErrNoResponders", err)
	}
}

func TestSubjectsAreNamespacedByNode(t *testing.T) {
	srv := testutil.StartNATS(t)
	a := testutil.Connect(t, srv.URL(), "node-a", "a")
	got := make(chan string, 1)
	sub, err := bus.Subscribe(a, note, func(subject string, m echoReq) { got <- subject + " " + m.Text })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	b := testutil.Connect(t, srv.URL(), "node-b", "b")
	if err := bus.Publish(b, note, echoReq{Text: "from b"}); err != nil {
		t.Fatal(err)
	}
	a2 := testutil.Connect(t, srv.URL(), "node-a", "a2")
	if err := bus.Publish(a2, note, echoReq{Text: "to a"}); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "rtpkit.v1.node-a.echo.note to a" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no message")
	}
}

func TestValidNodeID(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"node1", true}, {"edge-01_b", true}, {"", false}, {"a.b", false}, {"a b", false}, {"*", false}, {">", false},
		{string(make([]byte, 65)), false},
	} {
		if err := bus.ValidNodeID(tt.id); (err == nil) != tt.ok {
			t.Errorf("ValidNodeID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
	if err := bus.ValidNodeID(bus.DefaultNodeID()); err != nil {
		t.Errorf("default node id %q invalid: %v", bus.DefaultNodeID(), err)
	}
}

func TestConnectFailsClearlyWhenBusIsDown(t *testing.T) {
	port, err := testutil.FreePort("tcp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://user:secret@127.0.0.1:" + itoa(port)
	_, err = bus.Connect(context.Background(), bus.Options{URL: url, ConnectTimeout: 300 * time.Millisecond}, "n1", "t", nil)
	if !errors.Is(err, bus.ErrNotConnected) {
		t.Fatalf("err = %v, want ErrNotConnected", err)
	}
	if msg := err.Error(); !contains(msg, "127.0.0.1") || contains(msg, "secret") {
		t.Fatalf("error should name the URL without its password: %q", msg)
	}
}
