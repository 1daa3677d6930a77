package ngserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// HTTP server timeouts. WriteTimeout covers reading the body, the handler
// (and any wait for a slot or for a duplicate's first request) and writing
// the reply.
const (
	httpReadHeaderTimeout = 10 * time.Second
	httpReadTimeout       = 30 * time.Second
	httpWriteTimeout      = 2 * time.Minute
	httpIdleTimeout       = 2 * time.Minute
	httpMaxHeaderBytes    = 64 << 10
)

func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTPRequest),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// serveHTTP serves HTTP on one listener until shutdown.
func (s *Server) serveHTTP(l net.Listener) error {
	err := s.hsrv.Serve(&limitListener{Listener: l, s: s})
	if errors.Is(err, http.ErrServerClosed) || s.isStopping() || isClosedErr(err) {
		return nil
	}
	return fmt.Errorf("ngserver: http %s: %w", l.Addr(), err)
}

// serveHTTPRequest routes: POST /ng, GET /ping, the rest to HTTPExtra.
func (s *Server) serveHTTPRequest(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ng":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed: POST an ng message", http.StatusMethodNotAllowed)
			return
		}
		s.serveHTTPNG(w, r)
	case "/ping":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(w, "pong\n")
	default:
		if s.cfg.HTTPExtra != nil {
			s.cfg.HTTPExtra.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}
}

// serveHTTPNG answers one POST /ng. The request's Content-Type is not
// checked (curl users forget it); the response always carries ContentType.
func (s *Server) serveHTTPNG(w http.ResponseWriter, r *http.Request) {
	if !s.track() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxMessage)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.stats.http.malformed.Add(1)
			http.Error(w, "message too large: at most "+strconv.Itoa(s.cfg.MaxMessage)+" bytes", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return
	}
	cookie, doc, ok := SplitCookie(body)
	if !ok {
		s.stats.http.malformed.Add(1)
		http.Error(w, "malformed ng message: want COOKIE SP DOCUMENT", http.StatusBadRequest)
		return
	}
	s.stats.http.requests.Add(1)
	from, _ := netip.ParseAddrPort(r.RemoteAddr)
	reply := s.exchange(r.Context(), cookie, doc, unmapPort(from))
	if reply == nil {
		if r.Context().Err() == nil {
			http.Error(w, "no reply", http.StatusInternalServerError)
		}
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
	_, _ = w.Write(reply)
}

// limitListener closes connections beyond MaxConns (over all HTTP
// listeners of the server) at once.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.s.httpConns.Add(1) > int64(l.s.cfg.MaxConns) {
			l.s.httpConns.Add(-1)
			l.s.stats.http.rejected.Add(1)
			l.s.log.Warn("ng http connection refused: too many open", "from", c.RemoteAddr(), "max", l.s.cfg.MaxConns)
			_ = c.Close()
			continue
		}
		a := clientAddr(c)
		if ok, first := l.s.httpShare.take(a, l.s.cfg.MaxConnsPerClient); !ok {
			l.s.httpConns.Add(-1)
			l.s.stats.http.rejected.Add(1)
			if first {
				l.s.log.Warn("ng http connection refused: the client holds its share of connections (logged once until it holds fewer)",
					"from", c.RemoteAddr(), "max_per_client", l.s.cfg.MaxConnsPerClient)
			}
			_ = c.Close()
			continue
		}
		return &limitConn{Conn: c, s: l.s, client: a}, nil
	}
}

// limitConn gives its slot back when closed.
type limitConn struct {
	net.Conn
	s      *Server
	client netip.Addr
	once   sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.s.httpConns.Add(-1); c.s.httpShare.give(c.client) })
	return err
}
