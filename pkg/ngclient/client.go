// Package ngclient is a small client of rtpengine's ng protocol over UDP,
// for rtpctl, tests and the load tools: each request gets a fresh cookie
// and is retransmitted with the same cookie until a reply arrives, as
// Kamailio does.
package ngclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

// Client sends ng requests to one server.
type Client struct {
	conn    *net.UDPConn
	prefix  string
	seq     atomic.Uint64
	retry   time.Duration
	mu      sync.Mutex
	waiting map[string]chan []byte
	done    chan struct{}
}

// Dial connects to the ng server at addr (host:port).
func Dial(addr string) (*Client, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("ng server %s: %w", addr, err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, fmt.Errorf("ng server %s: %w", addr, err)
	}
	_ = c.SetReadBuffer(4 << 20)
	cl := &Client{conn: c, prefix: strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "_",
		retry: 500 * time.Millisecond, waiting: map[string]chan []byte{}, done: make(chan struct{})}
	go cl.read()
	return cl, nil
}

// SetRetransmit sets the interval after which an unanswered request is
// sent again (default 500 ms).
func (c *Client) SetRetransmit(d time.Duration) { c.retry = d }

// Close closes the client.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		cookie, doc, ok := cut(buf[:n])
		if !ok {
			continue
		}
		c.mu.Lock()
		ch := c.waiting[cookie]
		delete(c.waiting, cookie)
		c.mu.Unlock()
		if ch != nil {
			ch <- append([]byte(nil), doc...)
		}
	}
}

func cut(b []byte) (string, []byte, bool) {
	for i, x := range b {
		if x == ' ' {
			return string(b[:i]), b[i+1:], i > 0
		}
	}
	return "", nil, false
}

// Raw sends one document (bencode or JSON) and returns the reply document.
func (c *Client) Raw(ctx context.Context, doc []byte) ([]byte, error) {
	cookie := c.prefix + strconv.FormatUint(c.seq.Add(1), 10)
	ch := make(chan []byte, 1)
	c.mu.Lock()
	c.waiting[cookie] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, cookie)
		c.mu.Unlock()
	}()
	msg := append([]byte(cookie+" "), doc...)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if _, err := c.conn.Write(msg); err != nil {
				return nil, fmt.Errorf("ng send: %w", err)
			}
			t.Reset(c.retry)
		case r := <-ch:
			return r, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("ng %s: no reply: %w", c.conn.RemoteAddr(), ctx.Err())
		case <-c.done:
			return nil, errors.New("ng client closed")
		}
	}
}

// Do sends a bencode dictionary and decodes the reply. A reply with result
// "error" is returned as is, not as an error: callers look at it.
func (c *Client) Do(ctx context.Context, req bencode.Value) (bencode.Value, error) {
	raw, err := c.Raw(ctx, bencode.Encode(req))
	if err != nil {
		return bencode.Value{}, err
	}
	v, err := bencode.Decode(raw, bencode.Limits{})
	if err != nil {
		return bencode.Value{}, fmt.Errorf("ng reply: %w", err)
	}
	return v, nil
}

// Result returns the result of a reply and its error-reason.
func Result(v bencode.Value) (result, reason string) {
	result, _ = v.GetString("result")
	reason, _ = v.GetString("error-reason")
	return result, reason
}
