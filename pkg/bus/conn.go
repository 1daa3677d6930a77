package bus

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultURL is where daemons look for the bus when --nats-url is not given:
// the embedded server of `rtpctl up`, or Debian's nats-server.
const DefaultURL = "nats://127.0.0.1:4222"

// Options says how to reach the bus.
type Options struct {
	// URL of the NATS server; credentials may be in it (nats://user:pass@host
	// or nats://token@host).
	URL string
	// CredsFile is a NATS credentials file (JWT and NKey seed), optional.
	CredsFile string
	// NkeyFile holds the nkey seed the client signs the server's challenge
	// with (the bus of `rtpctl up` and the units' bus admit daemons by
	// nkey); optional. Only its path is an option: the seed never appears
	// in arguments or logs.
	NkeyFile string
	// ConnectTimeout bounds the wait for the first connection at start.
	ConnectTimeout time.Duration
	// Dial, if set, opens the connections to the server (the first and
	// every reconnect): tests whose bus runs in another network namespace
	// dial from inside it.
	Dial func(network, addr string) (net.Conn, error)
}

// dialFunc adapts a dial function to nats.CustomDialer.
type dialFunc func(network, addr string) (net.Conn, error)

func (f dialFunc) Dial(network, addr string) (net.Conn, error) { return f(network, addr) }

// RegisterFlags adds --nats-url, --nats-creds and --nats-connect-timeout.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.URL, "nats-url", DefaultURL, "`URL` of the node's NATS bus (JetStream on)")
	fs.StringVar(&o.CredsFile, "nats-creds", "", "NATS credentials `file` (optional)")
	fs.StringVar(&o.NkeyFile, "nats-nkey-file", "", "`file` holding this client's nkey seed for the bus (mode 0600)")
	fs.DurationVar(&o.ConnectTimeout, "nats-connect-timeout", 10*time.Second, "how long to wait for the bus at start")
}

// Conn is a connection to the bus on behalf of one node.
type Conn struct {
	// NC is the underlying NATS connection.
	NC   *nats.Conn
	node string
	log  *slog.Logger

	// lost is closed when the connection is closed for good by anything
	// but Close; lostErr (set before) says why. closing marks our Close.
	lost     chan struct{}
	lostErr  error
	lostOnce sync.Once
	closing  atomic.Bool

	// reconnected is closed, and replaced by a new channel, at every
	// reconnect (under mu).
	mu          sync.Mutex
	reconnected chan struct{}
}

// Reconnected returns a channel that is closed at the connection's next
// reconnect. Server-side state that a reconnect can lose (the ephemeral
// consumers behind JetStream watches, when the server restarted) is set up
// again by whoever waits on it, at once, instead of after the client
// library's own inactivity check (two idle heartbeats, 10 s and more).
func (c *Conn) Reconnected() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reconnected == nil {
		c.reconnected = make(chan struct{})
	}
	return c.reconnected
}

// signalReconnect wakes every waiter of Reconnected.
func (c *Conn) signalReconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reconnected != nil {
		close(c.reconnected)
	}
	c.reconnected = make(chan struct{})
}

var nodeIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidNodeID checks that id can be one subject token and a bucket name part.
func ValidNodeID(id string) error {
	if !nodeIDRe.MatchString(id) {
		return fmt.Errorf("%w %q: use 1-64 letters, digits, '-' or '_'", ErrBadNodeID, id)
	}
	return nil
}

// DefaultNodeID derives a node id from the host name: its first label, with
// characters a subject token cannot hold replaced by '-'.
func DefaultNodeID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "node"
	}
	h, _, _ = strings.Cut(h, ".")
	b := []byte(h)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// Connect dials the bus as client `name` of node `node` and waits, up to
// opts.ConnectTimeout or ctx, for the first connection. Once connected it
// reconnects forever: a daemon outlives bus restarts. The client still
// gives up when the server closes the connection itself (a protocol
// violation such as a control line beyond the server's limit) or refuses
// it on reconnecting (credentials no longer valid): Lost and WithLoss
// report that, so that the daemon can exit and be restarted.
func Connect(ctx context.Context, opts Options, node, name string, log *slog.Logger) (*Conn, error) {
	if err := ValidNodeID(node); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	url := opts.URL
	if url == "" {
		url = DefaultURL
	}
	connected := make(chan struct{}, 1)
	c := &Conn{node: node, log: log, lost: make(chan struct{})}
	nopts := []nats.Option{
		nats.Name(fmt.Sprintf("rtpkit %s %s pid %d", node, name, os.Getpid())),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) {
			select {
			case connected <- struct{}{}:
			default:
			}
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("bus disconnected", "url", redactURL(url), "err", err)
			}
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if c.closing.Load() {
				return
			}
			err := nc.LastError()
			if err == nil {
				err = errors.New("closed by the client library")
			}
			c.markLost(fmt.Errorf("%w (%s): %w", ErrConnectionLost, redactURL(url), err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.signalReconnect()
			log.Info("bus reconnected", "url", redactURL(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("bus error", "subject", subj, "err", err)
		}),
	}
	if opts.CredsFile != "" {
		nopts = append(nopts, nats.UserCredentials(opts.CredsFile))
	}
	if opts.Dial != nil {
		nopts = append(nopts, nats.SetCustomDialer(dialFunc(opts.Dial)))
	}
	if opts.NkeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(opts.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("bus key %s: %w", opts.NkeyFile, err)
		}
		nopts = append(nopts, o)
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return nil, fmt.Errorf("connect to bus %s: %w", redactURL(url), err)
	}
	if !nc.IsConnected() {
		timeout := opts.ConnectTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-connected:
		case <-t.C:
			c.closing.Store(true)
			last := nc.LastError()
			nc.Close()
			if last != nil {
				// An authorization violation says more than a timeout.
				return nil, fmt.Errorf("%w at %s after %s: %w", ErrNotConnected, redactURL(url), timeout, last)
			}
			return nil, fmt.Errorf("%w at %s after %s", ErrNotConnected, redactURL(url), timeout)
		case <-ctx.Done():
			c.closing.Store(true)
			nc.Close()
			return nil, fmt.Errorf("connect to bus %s: %w", redactURL(url), ctx.Err())
		}
	}
	log.Debug("bus connected", "url", redactURL(nc.ConnectedUrl()), "node", node)
	c.NC = nc
	return c, nil
}

// markLost records why the connection is gone for good and closes lost.
func (c *Conn) markLost(err error) {
	c.lostOnce.Do(func() {
		c.lostErr = err
		c.log.Error("bus connection closed for good; exiting so that the supervisor restarts the daemon", "err", err)
		close(c.lost)
	})
}

// Lost is closed when the connection is closed for good by the server or
// the client library (not by Close): nothing reaches the bus any more.
func (c *Conn) Lost() <-chan struct{} { return c.lost }

// LostErr is why the connection was lost (wrapping ErrConnectionLost), nil
// while it was not.
func (c *Conn) LostErr() error {
	select {
	case <-c.lost:
		return c.lostErr
	default:
		return nil
	}
}

// WithLoss returns a context that ends when ctx does or, with LostErr as
// its cause, when the connection is lost: a daemon runs on it so that
// losing the bus ends its Run like a shutdown, and then returns LostErr.
func (c *Conn) WithLoss(ctx context.Context) (context.Context, context.CancelFunc) {
	lctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-c.lost:
			cancel(c.lostErr)
		case <-lctx.Done():
		}
	}()
	return lctx, func() { cancel(context.Canceled) }
}

// Node is the node id this connection speaks for.
func (c *Conn) Node() string { return c.node }

// JetStream returns the JetStream context of the connection.
func (c *Conn) JetStream() (jetstream.JetStream, error) {
	js, err := jetstream.New(c.NC)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

// Close drains the connection (pending replies and publishes go out first)
// and waits, briefly, for it to close.
func (c *Conn) Close() {
	if c == nil || c.NC == nil {
		return
	}
	c.closing.Store(true)
	done := make(chan struct{})
	c.NC.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := c.NC.Drain(); err != nil {
		c.NC.Close()
		return
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		c.NC.Close()
	}
}

// redactURL hides credentials in a NATS URL for logs and errors.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return scheme + "://***@" + rest[at+1:]
	}
	return u
}

// RedactURL hides credentials in a NATS URL (for messages naming the URL).
func RedactURL(u string) string { return redactURL(u) }

// isNoResponders reports whether err says nobody serves the subject.
func isNoResponders(err error) bool {
	return errors.Is(err, nats.ErrNoResponders)
}
