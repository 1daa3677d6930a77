package ngserver

import (
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func httpURL(ap netip.AddrPort, path string) string { return "http://" + ap.String() + path }

func TestHTTP(t *testing.T) {
	extra := http.NewServeMux()
	extra.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ng_requests_total 1\n")
	})
	f := &fakeEngine{}
	s := startServer(t, Config{HTTP: []string{"127.0.0.1:0"}, HTTPExtra: extra, MaxMessage: 1000}, f)
	base := s.Addrs().HTTP[0]
	client := &http.Client{Timeout: replyWait}

	for _, tc := range []struct {
		name, method, path, ctype, body string
		wantStatus                      int
		wantCType, wantBody             string
		wantAllow                       string
	}{
		{"ng ping", "POST", "/ng", ContentType, "5323_1 " + pingDoc, 200, ContentType, "5323_1 " + pongReply, ""},
		{"ng JSON", "POST", "/ng", ContentType, `5323_3 {"command":"ping"}`, 200, ContentType, `5323_3 {"result":"ok"}`, ""},
		{"ng without content type", "POST", "/ng", "", "nc " + pingDoc, 200, ContentType, "nc " + pongReply, ""},
		{"ng empty payload", "POST", "/ng", ContentType, "e1 ", 200, ContentType, "e1 " + noPayload, ""},
		{"ng without cookie", "POST", "/ng", ContentType, pingDoc, 400, "", "", ""},
		{"ng empty cookie", "POST", "/ng", ContentType, " " + pingDoc, 400, "", "", ""},
		{"ng too large", "POST", "/ng", ContentType, "big d3:sdp" + strings.Repeat("v", 1000), 413, "", "", ""},
		{"ng GET", "GET", "/ng", "", "", 405, "", "", "POST"},
		{"ping", "GET", "/ping", "", "", 200, "text/plain", "pong\n", ""},
		{"ping POST", "POST", "/ping", "text/plain", "x", 405, "", "", "GET, HEAD"},
		{"extra handler", "GET", "/metrics", "", "", 200, "", "ng_requests_total 1\n", ""},
		{"unknown path", "GET", "/nope", "", "", 404, "", "", ""},
		{"ng with a trailing slash", "POST", "/ng/", ContentType, "x " + pingDoc, 404, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, httpURL(base, tc.path), strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantCType != "" && resp.Header.Get("Content-Type") != tc.wantCType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.wantCType)
			}
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
			if tc.wantAllow != "" && resp.Header.Get("Allow") != tc.wantAllow {
				t.Errorf("Allow %q, want %q", resp.Header.Get("Allow"), tc.wantAllow)
			}
		})
	}
	st := s.Stats()
	if st.HTTP.Requests != 4 || st.HTTP.Malformed != 3 || st.HandlerCalls != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestHTTPConnectionCap(t *testing.T) {
	f := &fakeEngine{gate: make(chan struct{})}
	s := startServer(t, Config{HTTP: []string{"127.0.0.1:0"}, MaxConns: 1}, f)
	url := httpURL(s.Addrs().HTTP[0], "/ng")
	first := make(chan error, 1)
	go func() {
		resp, err := http.Post(url, ContentType, strings.NewReader("c1 "+pingDoc))
		if err == nil {
			resp.Body.Close()
		}
		first <- err
	}()
	waitFor(t, "first request in the handler", func() bool { return f.calls.Load() == 1 })
	// A second connection is refused while the first is open.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	if _, err := (&http.Client{Transport: tr, Timeout: replyWait}).Post(url, ContentType, strings.NewReader("c2 "+pingDoc)); err == nil {
		t.Error("second connection served over the cap")
	}
	close(f.gate)
	if err := <-first; err != nil {
		t.Errorf("first request: %v", err)
	}
	if st := s.Stats(); st.HTTP.Rejected != 1 {
		t.Errorf("rejected %d", st.HTTP.Rejected)
	}
}

// TestCacheAcrossTransports sends one cookie over UDP, TCP and HTTP while
// the first request is still being handled: the handler runs once and all
// three get the same reply.
func TestCacheAcrossTransports(t *testing.T) {
	f := &fakeEngine{gate: make(chan struct{})}
	s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}, TCP: []string{"127.0.0.1:0"}, HTTP: []string{"127.0.0.1:0"}}, f)
	addrs := s.Addrs()
	const msg = "all d7:command5:offer3:sdp3:v=0e"
	want := "all " + echoReply("d7:command5:offer3:sdp3:v=0e")

	u := dialUDP(t, addrs.UDP[0])
	u.send(msg)
	waitFor(t, "first request in the handler", func() bool { return f.calls.Load() == 1 })

	tc := dialTCP(t, addrs.TCP[0])
	if _, err := tc.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var httpReply string
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := http.Post(httpURL(addrs.HTTP[0], "/ng"), ContentType, strings.NewReader(msg))
		if err != nil {
			t.Errorf("http: %v", err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		httpReply = string(b)
	}()
	waitFor(t, "TCP and HTTP duplicates waiting", func() bool { return s.Stats().CacheWaits == 2 })
	time.Sleep(20 * time.Millisecond)
	close(f.gate)

	if got, ok := u.recv(replyWait); !ok || got != want {
		t.Errorf("udp: %q", got)
	}
	readExactly(t, tc, want)
	wg.Wait()
	if httpReply != want {
		t.Errorf("http: %q", httpReply)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	st := s.Stats()
	if st.CacheHits != 2 || st.UDP.Requests != 1 || st.TCP.Requests != 1 || st.HTTP.Requests != 1 {
		t.Errorf("stats %+v", st)
	}
}
