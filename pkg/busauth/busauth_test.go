package busauth

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/api/ngapi"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/api/syncapi"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// TestBucketInStep: the bucket and record kind the lists name are node
// state's.
func TestBucketInStep(t *testing.T) {
	if bucketName("n1") != nodestate.BucketName("n1") || callKind != nodestate.CallKind {
		t.Fatalf("bucket %s kind %s, node state has %s and %s", bucketName("n1"), callKind, nodestate.BucketName("n1"), nodestate.CallKind)
	}
}

func TestPermissions(t *testing.T) {
	const node = "n1"
	kv := "$KV.rtpkit-v2-n1.call.>"
	for _, tt := range []struct {
		role       string
		pub, noPub []string
		sub, noSub []string
	}{
		{portdapi.Daemon,
			[]string{portdapi.StartedEvent.Subject(node), portdapi.RevokedEvent.Subject(node)},
			[]string{portdapi.FreeEvent.Subject(node), fwdapi.ActivityEvent.Subject(node), kv, ngapi.TerminateEndpoint.Subject(node)},
			[]string{portdapi.LeaseEndpoint.Subject(node), portdapi.FreeEvent.Subject(node), "_INBOX.>", "$SRV.>"},
			[]string{ngapi.TerminateEndpoint.Subject(node), ">"}},
		{fwdapi.Daemon,
			[]string{fwdapi.ActivityEvent.Subject(node), fwdapi.DTMFEvent.Subject(node)},
			[]string{portdapi.FreeEvent.Subject(node), kv, portdapi.LeaseEndpoint.Subject(node)},
			[]string{ngapi.PlayDTMFEvent.Subject(node)}, []string{portdapi.LeaseEndpoint.Subject(node)}},
		{ngapi.Daemon,
			[]string{portdapi.FreeEvent.Subject(node), portdapi.LeaseEndpoint.Subject(node), kv},
			[]string{portdapi.StartedEvent.Subject(node), portdapi.RevokedEvent.Subject(node), fwdapi.ActivityEvent.Subject(node),
				portdapi.BindEndpoint.Subject(node), "$JS.API.STREAM.DELETE.KV_rtpkit-v2-n1"},
			[]string{ngapi.TerminateEndpoint.Subject(node), fwdapi.ActivityEvent.Subject(node), portdapi.RevokedEvent.Subject(node)},
			[]string{portdapi.FreeEvent.Subject(node)}},
		{syncapi.Daemon,
			[]string{portdapi.BindEndpoint.Subject(node), kv},
			[]string{portdapi.FreeEvent.Subject(node), fwdapi.ActivityEvent.Subject(node), ngapi.TerminateEndpoint.Subject(node)},
			[]string{syncapi.KeyspaceEndpoint.Subject(node), fwdapi.ActivityEvent.Subject(node)},
			nil},
		{Operator, []string{">"}, nil, []string{">"}, nil},
	} {
		t.Run(tt.role, func(t *testing.T) {
			p, err := For(tt.role, node)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, list, want []string, in bool) {
				for _, s := range want {
					if slices.Contains(list, s) != in {
						t.Errorf("%s %s: in list %v, want %v (%v)", what, s, !in, in, list)
					}
				}
			}
			check("publish", p.Publish, tt.pub, true)
			check("publish", p.Publish, tt.noPub, false)
			check("subscribe", p.Subscribe, tt.sub, true)
			check("subscribe", p.Subscribe, tt.noSub, false)
		})
	}
	if _, err := For("nobody", node); err == nil {
		t.Error("an unknown role has permissions")
	}
}

func TestKeysMadeOnceAndPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bus")
	first, err := EnsureKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EnsureKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first, again) || len(first) != len(Roles()) {
		t.Fatalf("keys changed or missing: %v then %v", first, again)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v %v", fi.Mode(), err)
	}
	for _, k := range first {
		fi, err := os.Stat(k.SeedFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", k.SeedFile, fi.Mode(), err)
		}
	}
	// A key others may read is refused, not used.
	if err := os.Chmod(first[0].SeedFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureKeys(dir); err == nil || !strings.Contains(err.Error(), "want 0600") {
		t.Fatalf("a readable key: %v", err)
	}
}

// TestServerConfigAccepted: Debian's nats-server takes the rendered block.
func TestServerConfigAccepted(t *testing.T) {
	ns, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	dir := t.TempDir()
	keys, err := EnsureKeys(filepath.Join(dir, "bus"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := ServerConfig("n1", keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		seed, err := os.ReadFile(k.SeedFile)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(auth, strings.TrimSpace(string(seed))) {
			t.Fatalf("the server block holds %s's seed", k.Role)
		}
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(filepath.Join(dir, "auth.conf"), []byte(auth), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("listen: 127.0.0.1:4222\ninclude ./auth.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ns, "-t", "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("nats-server -t: %v\n%s\n%s", err, out, auth)
	}
}
