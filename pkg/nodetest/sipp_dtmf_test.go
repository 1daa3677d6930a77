package nodetest

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/codec"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// needTool finds a program the test drives, failing under
// RTPKIT_REQUIRE_DEPS and skipping otherwise when it is missing.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatalf("%s not installed (Debian %s; make test installs it)", name, pkg)
		}
		t.Skipf("%s (Debian %s) not installed", name, pkg)
	}
	return p
}

// TestSIPpDTMFThroughKamailio plays SIPp's shipped RFC 2833 capture (the
// digit 1) in a call from a SIPp caller through Kamailio (its rtpengine
// module, always-transcode) and rtpkit to a SIPp callee that answers
// without telephone-event: rtpkit reports the event (--dtmf-log-dest, as
// rtpengine's JSON) and the callee's audio carries the digit's tones,
// which spandsp's DTMF receiver hears.
func TestSIPpDTMFThroughKamailio(t *testing.T) {
	sipp := needTool(t, "sipp", "sip-tester")
	kamailio := needTool(t, "kamailio", "kamailio")
	if _, err := os.Stat("/usr/share/sip-tester/dtmf_2833_1.pcap"); err != nil {
		t.Fatalf("SIPp's RFC 2833 capture: %v", err)
	}
	if _, err := codec.NewDTMFDetector(); err != nil {
		t.Fatalf("no DTMF detector in this build: %v", err)
	}
	logDest := testutil.ListenUDP(t)
	_, _, ngAddr := testutil.StartLocalNode(t, 52300, 52399, "--delete-delay=0", "--dtmf-log-dest="+logDest.LocalAddr().String())
	port := func() int {
		p, err := testutil.FreePort("udp", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sipPort, calleePort, callerPort, callerMedia := port(), port(), port(), port()
	media := testutil.ListenUDP(t) // the callee's RTP

	dir := t.TempDir()
	tmpl, err := os.ReadFile("testdata/sipp/kamailio.cfg.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	modules := "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
	if out, err := exec.Command(kamailio, "-I").Output(); err == nil {
		if m := regexp.MustCompile(`(?m)^\s*MODULES_DIR\s+(\S+)`).FindSubmatch(out); m != nil {
			modules = string(m[1])
		}
	}
	cfg := strings.NewReplacer("@SIP_PORT@", strconv.Itoa(sipPort), "@NG_PORT@", ngAddr[strings.LastIndex(ngAddr, ":")+1:],
		"@CALLEE_PORT@", strconv.Itoa(calleePort), "@MODULES@", modules).Replace(string(tmpl))
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	kam := testutil.StartProc(t, kamailio, []string{"-f", cfgPath, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir})
	// Kamailio's main process ends its children when it gets SIGTERM (a
	// kill would leave them, holding the output pipe): this runs before
	// StartProc's cleanup.
	t.Cleanup(func() {
		_ = kam.Signal(syscall.SIGTERM)
		_, _ = kam.Wait(10 * time.Second)
	})
	kam.WaitMatch(t, regexp.MustCompile(`(?i)listening on|bind_sock|udp: 127\.0\.0\.1`), 20*time.Second)

	callee := testutil.StartProc(t, sipp, []string{"-sf", "testdata/sipp/callee-inband.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(calleePort),
		"-key", "rtpkit_media", strconv.Itoa(media.LocalAddr().(*net.UDPAddr).Port), "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"})
	time.Sleep(300 * time.Millisecond)
	caller := testutil.StartProc(t, sipp, []string{"127.0.0.1:" + strconv.Itoa(sipPort), "-sf", "testdata/sipp/caller-dtmf.xml",
		"-i", "127.0.0.1", "-p", strconv.Itoa(callerPort), "-mp", strconv.Itoa(callerMedia), "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"})

	// The callee's audio: PCMA, the digit's tones in it.
	det, _ := codec.NewDTMFDetector()
	dec, _ := codec.NewDecoder(codec.Format{Name: "PCMA", Clock: 8000})
	heard, pkts := "", 0
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && heard == ""; {
		_ = media.SetReadDeadline(time.Now().Add(time.Second))
		n, err := media.Read(buf)
		if err != nil {
			continue
		}
		if n <= 12 || buf[1]&0x7f != 8 {
			t.Fatalf("the callee got payload type %d, want PCMA (8) only", buf[1]&0x7f)
		}
		pkts++
		pcm, _ := dec.Decode(nil, buf[12:n])
		heard += det.Feed(pcm)
	}
	if heard != "1" {
		t.Fatalf("the callee's audio (%d packets) carries %q, want the digit 1\nkamailio:\n%s\ncaller:\n%s", pkts, heard, kam.Output(), caller.Output())
	}

	// The event, reported as rtpengine reports it.
	_ = logDest.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := logDest.Read(buf)
	if err != nil {
		t.Fatalf("no DTMF event at --dtmf-log-dest: %v", err)
	}
	var ev struct {
		Type     string `json:"type"`
		Event    int    `json:"event"`
		Duration int    `json:"duration"`
		Volume   int    `json:"volume"`
		Source   string `json:"source_tag"`
	}
	if err := json.Unmarshal(buf[:n], &ev); err != nil || ev.Type != "DTMF" || ev.Event != 1 || ev.Duration != 280 || ev.Volume != 10 ||
		!strings.Contains(ev.Source, "rtpkit") {
		t.Errorf("DTMF event %s (%v), want event 1, 280 ms, volume 10 from the caller's tag", buf[:n], err)
	}
	for name, p := range map[string]*testutil.Proc{"caller": caller, "callee": callee} {
		if code, err := p.Wait(30 * time.Second); err != nil || code != 0 {
			t.Errorf("SIPp %s: exit %d %v\n%s", name, code, err, p.Output())
		}
	}
}
