package mediabench

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
)

var mAudio = regexp.MustCompile(`(?m)^m=audio (\d+) `)

// partySDP is the SDP of a party that receives on 127.0.0.1:port with
// transport protocol proto and, if crypto is not empty, that a=crypto
// value.
func partySDP(port int, proto, crypto string) string {
	s := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=mediabench\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(port) + " " + proto + " 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=ptime:20\r\n"
	if crypto != "" {
		s += "a=crypto:" + crypto + "\r\n"
	}
	return s
}

// ngRequest builds an offer, answer or delete for call.
func ngRequest(cmd, call, sdp string) bencode.Value {
	d := bencode.NewDict(
		bencode.Pair{Key: "command", Value: bencode.Str(cmd)},
		bencode.Pair{Key: "call-id", Value: bencode.Str(call)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("mb-a")})
	switch cmd {
	case "answer":
		d.Set("to-tag", bencode.Str("mb-b"))
	case "delete":
		d.Set("delete-delay", bencode.Int(0))
	}
	if sdp != "" {
		d.Set("sdp", bencode.Str(sdp))
		d.Set("flags", bencode.Strs("trust-address"))
		d.Set("replace", bencode.Strs("origin", "session-connection"))
		d.Set("ICE", bencode.Str("remove"))
	}
	return d
}

// exchange sends one request and returns the reply, failing unless the
// result is "ok".
func exchange(ctx context.Context, c *ngclient.Client, req bencode.Value) (bencode.Value, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := c.Do(rctx, req)
	if err != nil {
		return r, err
	}
	if res, why := ngclient.Result(r); res != "ok" {
		return r, fmt.Errorf("result %q: %s", res, why)
	}
	return r, nil
}

// mediaPort returns the port of the first audio m= line of the SDP in an
// ng reply.
func mediaPort(r bencode.Value) (int, error) {
	sdp, _ := r.GetString("sdp")
	m := mAudio.FindStringSubmatch(sdp)
	if m == nil {
		return 0, fmt.Errorf("no m=audio in reply SDP %q", sdp)
	}
	return strconv.Atoi(m[1])
}

// signal sends an offer or answer of call and returns the port of the
// reply's audio (where the other party must send) and the reply's SDP.
func signal(ctx context.Context, c *ngclient.Client, call string, req bencode.Value) (int, string, error) {
	cmd, _ := req.GetString("command")
	r, err := exchange(ctx, c, req)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %w", cmd, call, err)
	}
	port, err := mediaPort(r)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %w", cmd, call, err)
	}
	sdp, _ := r.GetString("sdp")
	return port, sdp, nil
}

// setupCall runs offer and answer for one call whose parties receive on
// portA and portB, and returns the proxy ports A and B must send to.
func setupCall(ctx context.Context, c *ngclient.Client, call string, portA, portB int) (forA, forB int, err error) {
	if forB, _, err = signal(ctx, c, call, ngRequest("offer", call, partySDP(portA, "RTP/AVP", ""))); err != nil {
		return 0, 0, err
	}
	if forA, _, err = signal(ctx, c, call, ngRequest("answer", call, partySDP(portB, "RTP/AVP", ""))); err != nil {
		return 0, 0, err
	}
	return forA, forB, nil
}

// parallel runs f(i) for i in [0, n) on up to workers goroutines, each with
// its own ng client, and returns the first error.
func parallel(ctx context.Context, ng string, n, workers int, f func(ctx context.Context, c *ngclient.Client, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < min(workers, n); w++ {
		c, err := ngclient.Dial(ng)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(ctx, c, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}
