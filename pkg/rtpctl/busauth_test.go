package rtpctl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/api/syncapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// busClient is a raw NATS connection that records the errors the server
// sends it asynchronously (permission violations).
type busClient struct {
	nc   *nats.Conn
	errs chan error
}

// dialBus connects to url with the nkey seed in keyFile ("" for none).
func dialBus(url, keyFile string) (*busClient, error) {
	c := &busClient{errs: make(chan error, 64)}
	opts := []nats.Option{
		nats.NoReconnect(), nats.Timeout(3 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}),
	}
	if keyFile != "" {
		o, err := nats.NkeyOptionFromSeed(keyFile)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", keyFile, err)
		}
		opts = append(opts, o)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	c.nc = nc
	return c, nil
}

// refused publishes data to subject and reports whether the server refused
// it with a permission violation.
func (c *busClient) refused(t *testing.T, subject string) bool {
	t.Helper()
	if err := c.nc.Publish(subject, []byte(`{}`)); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	if err := c.nc.FlushTimeout(3 * time.Second); err != nil {
		t.Fatalf("flush after %s: %v", subject, err)
	}
	deadline := time.After(2 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

var stateDirRe = regexp.MustCompile(`(?m)^  state-dir\s+(\S+)$`)
var busURLRe = regexp.MustCompile(`nats://127\.0\.0\.1:\d+`)

// TestUpBusNeedsCredentials: the bus of `rtpctl up` refuses clients without
// a key, each daemon's key may publish only what its daemon publishes, the
// node works end to end (a call with RTP both ways), and rtpctl's client
// commands find the operator key by themselves.
func TestUpBusNeedsCredentials(t *testing.T) {
	up, ng, _ := testutil.StartLocalNode(t, 36200, 36299)
	out := up.Output()
	url := busURLRe.FindString(out)
	m := stateDirRe.FindStringSubmatch(out)
	if url == "" || m == nil {
		t.Fatalf("no bus URL or state dir in:\n%s", out)
	}
	state := m[1]
	node := bus.DefaultNodeID()
	bucket := nodestate.BucketName(node)

	// No key: refused.
	if c, err := dialBus(url, ""); err == nil {
		c.nc.Close()
		t.Errorf("a client without a key connected to the node's bus")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Errorf("a client without a key: %v, want an authorization violation", err)
	}

	// Each daemon's key, with its key file private to the node's user.
	as := func(daemon string) *busClient {
		t.Helper()
		file := filepath.Join(state, "bus", daemon+".nk")
		if fi, err := os.Stat(file); err != nil {
			t.Errorf("%s's key: %v", daemon, err)
			file = ""
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", file, fi.Mode().Perm())
		}
		c, err := dialBus(url, file)
		if err != nil {
			t.Fatalf("connect as %s: %v", daemon, err)
		}
		t.Cleanup(c.nc.Close)
		return c
	}
	if fi, err := os.Stat(filepath.Join(state, "bus")); err == nil && fi.Mode().Perm() != 0o700 {
		t.Errorf("key dir: mode %v, want 0700", fi.Mode().Perm())
	}
	for _, tt := range []struct {
		daemon, subject string
	}{
		{ngapi.Daemon, portdapi.StartedEvent.Subject(node)},
		{ngapi.Daemon, portdapi.RevokedEvent.Subject(node)},
		{ngapi.Daemon, fwdapi.ActivityEvent.Subject(node)},
		{ngapi.Daemon, "$KV." + bucket + ".lease.x"},
		{ngapi.Daemon, "$JS.API.STREAM.DELETE.KV_" + bucket},
		{portdapi.Daemon, "$KV." + bucket + ".call.x"},
		{portdapi.Daemon, ngapi.TerminateEndpoint.Subject(node)},
		{fwdapi.Daemon, "$KV." + bucket + ".call.x"},
		{fwdapi.Daemon, portdapi.FreeEvent.Subject(node)},
		{syncapi.Daemon, fwdapi.ActivityEvent.Subject(node)},
		{syncapi.Daemon, portdapi.FreeEvent.Subject(node)},
	} {
		c := as(tt.daemon)
		if !c.refused(t, tt.subject) {
			t.Errorf("%s's key may publish to %s", tt.daemon, tt.subject)
		}
	}

	// The node works: a call with RTP both ways.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	toB := testutil.NGOK(t, ctx, ng, testutil.NGCall("offer", "authcall", "", testutil.AudioSDP(a)))
	toA := testutil.NGOK(t, ctx, ng, testutil.NGCall("answer", "authcall", "B", testutil.AudioSDP(b)))
	for seq := uint16(1); seq <= 5; seq++ {
		testutil.Relay(t, a, testutil.SDPMediaAddr(t, toA), b, 1, seq)
		testutil.Relay(t, b, testutil.SDPMediaAddr(t, toB), a, 2, seq)
	}

	// rtpctl finds the operator key without being told where it is.
	rtpctl := filepath.Join(testutil.Binaries(t), "rtpctl")
	for _, args := range [][]string{{"status"}, {"list", "sessions"}} {
		cmd := exec.Command(rtpctl, append(args, "--nats-url", url)...)
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("rtpctl %s: %v\n%s", strings.Join(args, " "), err, got)
			continue
		}
		want := "ng-ctl"
		if args[0] == "list" {
			want = "authcall"
		}
		if !strings.Contains(string(got), want) {
			t.Errorf("rtpctl %s: no %q in:\n%s", strings.Join(args, " "), want, got)
		}
	}
}
