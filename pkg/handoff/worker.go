package handoff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/fdpass"
)

// Socket is a socket a worker serves. FD belongs to the Worker: a Handler
// uses it between Add and Remove and never closes it.
type Socket struct {
	Local   netip.AddrPort
	Network string
	Call    string
	FD      int
}

// Handler is told of the sockets to serve. Calls come from one goroutine.
type Handler interface {
	// Add: start serving s.
	Add(s Socket)
	// Remove: stop using the socket; the Worker closes it after Remove returns.
	Remove(local netip.AddrPort)
}

// Flusher is a Handler that wants to know where each message from portd
// ends: the Worker calls Flush once it has handled all of a message's
// items, so that the handler can do the work of its Adds together (portd
// sends a call's sockets in one message).
type Flusher interface {
	Handler
	Flush()
}

// Worker is the worker's side of the hand-off: it keeps a connection to
// portd (reconnecting with back-off), holds the sockets it was given, and
// hands copies back to a restarted portd.
type Worker struct {
	id      string
	path    string
	handler Handler
	log     *slog.Logger

	mu    sync.Mutex
	socks map[netip.AddrPort]Socket
}

// NewWorker returns a worker named id that connects to the hand-off socket
// in runtimeDir.
func NewWorker(id, runtimeDir string, h Handler, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.Default()
	}
	return &Worker{id: id, path: filepath.Join(runtimeDir, SocketName), handler: h, log: log, socks: map[netip.AddrPort]Socket{}}
}

// Sockets returns the sockets held now.
func (w *Worker) Sockets() []Socket {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Socket, 0, len(w.socks))
	for _, s := range w.socks {
		out = append(out, s)
	}
	return out
}

// Run connects to portd and serves the hand-off until ctx ends, reconnecting
// whenever the connection drops. Sockets stay open across reconnects; Close
// closes them.
func (w *Worker) Run(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := w.session(ctx)
		if ctx.Err() != nil {
			break
		}
		w.log.Warn("portd hand-off connection lost; reconnecting", "path", w.path, "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 2*time.Second)
		if err == nil {
			backoff = 50 * time.Millisecond
		}
	}
	return nil
}

// Close closes every socket the worker holds.
func (w *Worker) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for l, s := range w.socks {
		_ = unix.Close(s.FD)
		delete(w.socks, l)
	}
}

func (w *Worker) session(ctx context.Context) error {
	conn, err := fdpass.DialContext(ctx, w.path)
	if err != nil {
		return fmt.Errorf("dial portd: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	// hello, then a copy of everything we hold, then synced.
	items := []fdpass.Item{{Meta: Msg{Op: OpHello, Worker: w.id, PID: os.Getpid()}.Encode(), FD: fdpass.NoFD}}
	w.mu.Lock()
	for _, s := range w.socks {
		items = append(items, fdpass.Item{Meta: Msg{Op: OpAdopt, Local: s.Local, Network: s.Network, Call: s.Call}.Encode(), FD: s.FD})
	}
	items = append(items, fdpass.Item{Meta: Msg{Op: OpSynced}.Encode(), FD: fdpass.NoFD})
	err = conn.Send(items)
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("hello to portd: %w", err)
	}
	w.log.Info("connected to portd", "path", w.path, "worker", w.id, "sockets", len(items)-2)

	for {
		got, err := conn.Recv()
		if err != nil {
			if errors.Is(err, fdpass.ErrTruncated) || errors.Is(err, fdpass.ErrBadFrame) || errors.Is(err, fdpass.ErrBadControl) {
				w.log.Error("bad message from portd", "err", err)
				continue
			}
			return err
		}
		for _, it := range got {
			w.apply(it)
		}
		if f, ok := w.handler.(Flusher); ok {
			f.Flush()
		}
	}
}

func (w *Worker) apply(it fdpass.Item) {
	m, err := Decode(it.Meta)
	if err != nil {
		w.log.Error("bad message from portd", "err", err)
		closeFD(it.FD)
		return
	}
	switch m.Op {
	case OpAdd:
		if it.FD == fdpass.NoFD {
			w.log.Error("add without a socket", "local", m.Local)
			return
		}
		w.mu.Lock()
		_, dup := w.socks[m.Local]
		if !dup {
			w.socks[m.Local] = Socket{Local: m.Local, Network: m.Network, Call: m.Call, FD: it.FD}
		}
		w.mu.Unlock()
		if dup {
			closeFD(it.FD) // we have it already
			return
		}
		w.handler.Add(Socket{Local: m.Local, Network: m.Network, Call: m.Call, FD: it.FD})
	case OpRemove:
		closeFD(it.FD)
		w.mu.Lock()
		s, ok := w.socks[m.Local]
		delete(w.socks, m.Local)
		w.mu.Unlock()
		if ok {
			w.handler.Remove(m.Local)
			_ = unix.Close(s.FD)
		}
	default:
		closeFD(it.FD)
		w.log.Warn("unexpected message from portd", "op", m.Op)
	}
}

func closeFD(fd int) {
	if fd != fdpass.NoFD && fd >= 0 {
		_ = unix.Close(fd)
	}
}
