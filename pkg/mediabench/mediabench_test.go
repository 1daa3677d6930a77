package mediabench_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/mediabench"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// TestRunAgainstNode runs a small load through a real node started with
// rtpctl up and checks that it is relayed and that CPU is accounted.
func TestRunAgainstNode(t *testing.T) {
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	up := testutil.StartProc(t, filepath.Join(testutil.Binaries(t), "rtpctl"), []string{"up", "--nats-listen=127.0.0.1:0",
		"--state-dir=" + testutil.ShortTempDir(t), "--interface=127.0.0.1", "--listen-ng=" + ngAddr,
		"--delete-delay=0", "--log-level=warn"})
	up.WaitMatch(t, testutil.MatchLine(`^  rtp-fwd\s+running, pid \d+$`), 30*time.Second)
	up.WaitMatch(t, testutil.MatchLine(`^Stop with Ctrl-C`), 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := mediabench.Run(ctx, mediabench.Config{
		NG: ngAddr, Calls: 10, PPS: 2000, Duration: 2 * time.Second, PIDs: []int{up.PID()}, Progress: tWriter{t},
	})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, up.Output())
	}
	t.Logf("%+v", res)
	if res.Sent == 0 || float64(res.Received) <= 0.9*float64(res.Sent) {
		t.Errorf("received %d of %d", res.Received, res.Sent)
	}
	if res.SentAToB == 0 || res.SentBToA == 0 || res.ReceivedAToB == 0 || res.ReceivedBToA == 0 {
		t.Errorf("a direction is idle: %+v", res)
	}
	if res.CPUusPerPacket <= 0 {
		t.Errorf("CPU µs per packet %v", res.CPUusPerPacket)
	}
	if res.LatencyP50us <= 0 || res.LatencyP99us < res.LatencyP50us {
		t.Errorf("latency p50 %v p99 %v", res.LatencyP50us, res.LatencyP99us)
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestSRTPAgainstNode runs a short SRTP load of each mode through a node:
// nothing lost, and every packet reached its SRTP party encrypted with the
// key the node gave it (the receiver decrypts each with that key before it
// counts it; one in the clear or under another key would be an SRTP
// failure and a loss).
func TestSRTPAgainstNode(t *testing.T) {
	up, _, ngAddr := testutil.StartLocalNode(t, 49900, 49999, "--delete-delay=0")
	for _, tc := range []struct{ mode, suite, a, b string }{
		{mediabench.SRTPFromRTP, "", "", "AES_CM_128_HMAC_SHA1_80"},
		{mediabench.SRTPFromRTP, "AEAD_AES_128_GCM", "", "AEAD_AES_128_GCM"},
		{mediabench.SRTPBoth, "", "AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"},
	} {
		t.Run(tc.mode+" "+tc.b, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := mediabench.Run(ctx, mediabench.Config{
				NG: ngAddr, Calls: 5, PPS: 1000, Duration: time.Second, PIDs: []int{up.PID()},
				SRTP: tc.mode, SRTPSuite: tc.suite,
			})
			if err != nil {
				t.Fatalf("run: %v\n%s", err, up.Output())
			}
			t.Logf("%+v", res)
			if res.SRTP != tc.mode || res.SRTPSuiteA != tc.a || res.SRTPSuiteB != tc.b {
				t.Errorf("SRTP %q, A %q, B %q; want %q, %q, %q", res.SRTP, res.SRTPSuiteA, res.SRTPSuiteB, tc.mode, tc.a, tc.b)
			}
			if res.Sent == 0 || res.Lost != 0 || res.ReceivedAToB == 0 || res.ReceivedBToA == 0 {
				t.Errorf("sent %d, lost %d, received A→B %d, B→A %d", res.Sent, res.Lost, res.ReceivedAToB, res.ReceivedBToA)
			}
			if res.SRTPFailures != 0 || res.SRTPClear != 0 {
				t.Errorf("%d packets did not decrypt, %d arrived in the clear", res.SRTPFailures, res.SRTPClear)
			}
		})
	}
}
