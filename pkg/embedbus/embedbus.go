// Package embedbus runs a NATS server with JetStream inside the calling
// process: the default bus of `rtpctl up` and of tests. Production nodes may
// use Debian's nats-server started with -js instead; every daemon takes
// --nats-url.
//
// It is kept apart from package bus so that daemons which only connect (the
// forwarding workers above all) do not link the server.
package embedbus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures the embedded server.
type Options struct {
	// Listen is host:port for clients; port 0 picks a free one. The host must
	// be a loopback address unless AllowNonLoopback is set: the bus carries
	// control of the node (and without Users or Token admits anyone).
	Listen           string
	AllowNonLoopback bool
	// StoreDir is where JetStream keeps its files (node state survives a
	// restart of the bus). Empty means memory only.
	StoreDir string
	// Token, if set, is required from clients (nats://TOKEN@host:port).
	Token string
	// Users, if any, are the only clients admitted: each proves its nkey
	// and may publish and subscribe only as its permissions allow.
	Users []User
	// MaxFileStore bounds JetStream's file storage (default
	// DefaultMaxFileStore); MaxMemoryStore its memory storage (default
	// DefaultMaxMemoryStore). A stream that would grow past them refuses
	// the write.
	MaxFileStore   int64
	MaxMemoryStore int64
}

// User is a client admitted by its nkey, with its allow lists.
type User struct {
	// Nkey is the user's public nkey (U...).
	Nkey      string
	Publish   []string
	Subscribe []string
	// Responses allows replies to the requests the user receives.
	Responses bool
}

// Default JetStream limits of the embedded bus.
const (
	DefaultMaxFileStore   = 1 << 30
	DefaultMaxMemoryStore = 256 << 20
)

// Server is a running embedded bus.
type Server struct {
	srv *server.Server
	url string
}

var errNotLoopback = errors.New("embedded bus must listen on a loopback address")

// Start runs the server and waits until it accepts connections.
func Start(opts Options, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	host, portStr, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("bus listen address %q: %w", opts.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("bus listen address %q: bad port", opts.Listen)
	}
	if !opts.AllowNonLoopback {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.IsLoopback() {
			return nil, fmt.Errorf("bus listen address %q: %w", opts.Listen, errNotLoopback)
		}
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	sopts := &server.Options{
		ServerName:         "rtpkit-bus",
		Host:               host,
		Port:               port,
		NoSigs:             true,
		JetStream:          true,
		JetStreamMaxMemory: orDefault(opts.MaxMemoryStore, DefaultMaxMemoryStore),
		JetStreamMaxStore:  orDefault(opts.MaxFileStore, DefaultMaxFileStore),
		MaxPayload:         8 << 20,
		Authorization:      opts.Token,
	}
	for _, u := range opts.Users {
		sopts.Nkeys = append(sopts.Nkeys, &server.NkeyUser{Nkey: u.Nkey, Permissions: permissions(u)})
	}
	if opts.StoreDir != "" {
		dir := filepath.Join(opts.StoreDir, "jetstream")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("bus store dir: %w", err)
		}
		sopts.StoreDir = dir
	} else {
		sopts.StoreDir = ""
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded bus: %w", err)
	}
	srv.SetLoggerV2(&logAdapter{log: log.With("component", "bus")}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded bus did not start listening on %s within 10s", opts.Listen)
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded bus: unexpected listen address %v", srv.Addr())
	}
	url := "nats://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
	return &Server{srv: srv, url: url}, nil
}

// URL is the address clients dial (without credentials).
func (s *Server) URL() string { return s.url }

// ClientURL is URL with the token, if any, for child processes.
func (s *Server) ClientURL(token string) string {
	if token == "" {
		return s.url
	}
	return "nats://" + token + "@" + s.url[len("nats://"):]
}

// NATS exposes the server (for in-process connections in tests).
func (s *Server) NATS() *server.Server { return s.srv }

// Shutdown stops the server and waits until it is down.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

func orDefault(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

// permissions converts a user's allow lists to the server's form.
func permissions(u User) *server.Permissions {
	p := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: u.Publish},
		Subscribe: &server.SubjectPermission{Allow: u.Subscribe},
	}
	if u.Responses {
		p.Response = &server.ResponsePermission{MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS, Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION}
	}
	return p
}

type logAdapter struct{ log *slog.Logger }

func (l *logAdapter) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
