package ngctl_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPerlClientRTPPFlags: rtpengine's Perl client library (NGCP::Rtpengine,
// which rtpengine-ng-client uses) sends an offer whose options are all in
// rtpp-flags: replace-origin and the direction are applied (the SDP names
// interface b's address in c= and o=), and the flag rtpkit does not know
// comes back as a warning, the call made all the same.
func TestPerlClientRTPPFlags(t *testing.T) {
	if err := exec.Command("perl", "-MNGCP::Rtpengine", "-e", "1").Run(); err != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatal("NGCP::Rtpengine (Debian rtpengine-utils) not installed")
		}
		t.Skip("NGCP::Rtpengine (Debian rtpengine-utils) not installed")
	}
	n := startNode(t, 34200, "--interface=a/127.0.0.1", "--interface=b/127.0.0.2")
	host, port, _ := strings.Cut(n.ngAddr, ":")
	script := `
use strict; use warnings; use NGCP::Rtpengine;
my $e = NGCP::Rtpengine->new($ARGV[0], $ARGV[1]);
my $r = $e->req({command => 'offer', 'call-id' => 'rtpp1', 'from-tag' => 'pa', sdp => $ARGV[2],
	'rtpp-flags' => 'replace-origin direction=a direction=b no-such-flag'});
print "result=$r->{result}\n";
print "warning=" . ($r->{warning} // '') . "\n";
print "sdp=$r->{sdp}\n";
`
	sdp := "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 9000 RTP/AVP 0\r\n"
	out, err := exec.Command("perl", "-e", script, host, port, sdp).CombinedOutput()
	if err != nil {
		t.Fatalf("perl: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"result=ok", "o=- 1 1 IN IP4 127.0.0.2", "c=IN IP4 127.0.0.2", `warning=unknown flag "no-such-flag"`} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in the reply:\n%s", want, s)
		}
	}
}
