package metrics

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rtpkit/rtpkit/pkg/cli"
)

// Path is where the metrics are served.
const Path = "/metrics"

// Option names daemon's metrics option: metrics-portd, metrics-rtp-fwd,
// metrics-ng-ctl, metrics-redis-sync. Each daemon has its own name so that
// one config file can serve a whole node.
func Option(daemon string) string { return "metrics-" + daemon }

// RegisterFlag adds --metrics-<daemon> to fs, stored in p: the HOST:PORT to
// serve /metrics on; empty (the default) serves none.
func RegisterFlag(fs *flag.FlagSet, p *string, daemon string) {
	fs.StringVar(p, Option(daemon), "", "serve Prometheus /metrics of "+daemon+" on `HOST:PORT` (default off; loopback recommended)")
}

// ValidateAddr checks the value of daemon's metrics option: empty, or
// HOST:PORT with a port of 0-65535 (0 picks a free one, logged at start).
func ValidateAddr(daemon, addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return cli.Usagef("--%s %q: want HOST:PORT (IPv6 as [ADDR]:PORT)", Option(daemon), addr)
	}
	return nil
}

// Handler serves the metrics of g in the Prometheus text format. A
// collector that fails is logged and left out; the rest are served.
func Handler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Server serves /metrics on one listener.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on addr and serves g's metrics at /metrics until ctx ends
// or Close is called. An empty addr means metrics are off: Start returns a
// nil *Server (whose methods do nothing) and no error. A listen error is
// returned, so that a daemon refuses to start on a taken port.
func Start(ctx context.Context, addr string, g prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	if addr == "" {
		return nil, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, Handler(g, log))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintf(w, "rtpkit metrics: %s\n", Path)
	})
	s := &Server{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+Path)
	return s, nil
}

// Addr is the address the server listens on (nil for a nil Server).
func (s *Server) Addr() net.Addr {
	if s == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the server, letting scrapes under way finish for up to a
// second, and waits until it has stopped. It is safe to call more than
// once, and on a nil Server.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}
