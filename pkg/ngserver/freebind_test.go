package ngserver

import "testing"

// TestListenAbsentAddress: an ng address that is not on the host yet (a
// failover address added at takeover) can be listened on.
func TestListenAbsentAddress(t *testing.T) {
	l, err := listenUDP("192.0.2.123:0") // TEST-NET-1: on no host
	if err != nil {
		t.Fatalf("listen on an absent address: %v", err)
	}
	defer l.conn.Close()
	if got := l.local.Addr().String(); got != "192.0.2.123" {
		t.Errorf("bound to %s", got)
	}
}
