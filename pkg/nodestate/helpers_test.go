package nodestate_test

import (
	"testing"

	"github.com/rtpkit/rtpkit/pkg/embedbus"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func startBusIn(t *testing.T, dir string) *embedbus.Server {
	t.Helper()
	srv, err := embedbus.Start(embedbus.Options{Listen: "127.0.0.1:0", StoreDir: dir}, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return srv
}
