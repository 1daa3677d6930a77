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
	// control of the node and has no authentication by default.
	Listen           string
	AllowNonLoopback bool
	// StoreDir is where JetStream keeps its files (node state survives a
	// restart of the bus). Empty means memory only.
	StoreDir string
	// Token, if set, is required from clients (nats://TOKEN@host:port).
	Token string
}

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
		JetStreamMaxMemory: 256 << 20,
		MaxPayload:         8 << 20,
		Authorization:      opts.Token,
	}
	if opts.StoreDir != "" {
		dir := filepath.Join(opts.StoreDir, "jetstream")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("bus store dir: %w", err)
		}
		sopts.StoreDir = dir
	} else {
		sopts.StoreDir = ""
		sopts.JetStreamMaxStore = 0
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

type logAdapter struct{ log *slog.Logger }

func (l *logAdapter) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
