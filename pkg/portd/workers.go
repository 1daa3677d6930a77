package portd

import (
	"errors"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/fdpass"
	"github.com/rtpkit/rtpkit/pkg/handoff"
	"github.com/rtpkit/rtpkit/pkg/mediasock"
)

// workers serves the hand-off socket: it knows which worker serves which
// call and sends each worker the sockets of its calls.
type workers struct {
	t   *table
	log *slog.Logger
	ln  *fdpass.Listener

	mu         sync.Mutex
	conns      map[string]*workerConn
	callWorker map[string]string // call → worker id; sticky while the call lives
}

type workerConn struct {
	id    string
	pid   int32
	conn  *fdpass.Conn
	since time.Time

	sendMu sync.Mutex
	mu     sync.Mutex
	has    map[netip.AddrPort]bool // sockets the worker holds
}

func newWorkers(t *table, ln *fdpass.Listener, log *slog.Logger) *workers {
	return &workers{t: t, ln: ln, log: log, conns: map[string]*workerConn{}, callWorker: map[string]string{}}
}

// serve accepts workers until the listener is closed.
func (w *workers) serve() {
	for {
		c, err := w.ln.Accept()
		if err != nil {
			if errors.Is(err, fdpass.ErrPeerRejected) {
				w.log.Warn("hand-off peer rejected", "err", err)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			w.log.Error("hand-off accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go w.handle(c)
	}
}

// handle runs one worker connection: hello and adopts, then the initial
// sockets, then waits for the connection to end.
func (w *workers) handle(c *fdpass.Conn) {
	wc := &workerConn{conn: c, since: time.Now().UTC(), has: map[netip.AddrPort]bool{}, pid: c.Peer().Pid}
	var unknown []netip.AddrPort
	adopted := 0
	synced := false
	for !synced {
		items, err := c.Recv()
		if err != nil {
			w.log.Warn("worker left during hello", "pid", wc.pid, "err", err)
			_ = c.Close()
			return
		}
		for i, it := range items {
			m, err := handoff.Decode(it.Meta)
			if err != nil {
				fdpass.CloseItems(items[i:])
				w.log.Error("bad hello from worker", "pid", wc.pid, "err", err)
				_ = c.Close()
				return
			}
			switch m.Op {
			case handoff.OpHello:
				wc.id = m.Worker
				closeFD(it.FD) // none expected
			case handoff.OpAdopt:
				if it.FD == fdpass.NoFD {
					continue
				}
				// adopt owns it.FD from here: it keeps or closes it.
				kept, known, call := w.t.adopt(m.Local, it.FD)
				if kept {
					adopted++
				}
				if !known {
					unknown = append(unknown, m.Local)
					continue
				}
				wc.has[m.Local] = true
				if call != "" {
					w.mu.Lock()
					w.callWorker[call] = wc.id
					w.mu.Unlock()
				}
			case handoff.OpSynced:
				synced = true
				closeFD(it.FD) // none expected
			default:
				closeFD(it.FD)
			}
		}
	}
	if wc.id == "" {
		w.log.Error("worker did not say hello", "pid", wc.pid)
		_ = c.Close()
		return
	}
	w.mu.Lock()
	if old := w.conns[wc.id]; old != nil {
		_ = old.conn.Close()
	}
	w.conns[wc.id] = wc
	w.mu.Unlock()
	w.log.Info("worker connected", "worker", wc.id, "pid", wc.pid, "held", len(wc.has), "adopted", adopted)

	if len(unknown) > 0 {
		items := make([]fdpass.Item, 0, len(unknown))
		for _, l := range unknown {
			items = append(items, fdpass.Item{Meta: handoff.Msg{Op: handoff.OpRemove, Local: l}.Encode(), FD: fdpass.NoFD})
		}
		w.send(wc, items)
	}
	// Every call of this worker, and calls waiting for any worker.
	for _, call := range w.t.calls() {
		if w.pick(call) == wc.id {
			w.sendCall(wc, call)
		}
	}

	// The worker sends nothing more; a read returns when it goes away.
	for {
		items, err := c.Recv()
		if err != nil {
			break
		}
		fdpass.CloseItems(items)
	}
	w.mu.Lock()
	if w.conns[wc.id] == wc {
		delete(w.conns, wc.id)
	}
	w.mu.Unlock()
	_ = c.Close()
	w.log.Info("worker disconnected", "worker", wc.id, "pid", wc.pid)
}

// pick returns the worker that serves call, assigning one (by hash of the
// call id over the connected workers) if it has none. Empty if no worker is
// connected.
func (w *workers) pick(call string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id, ok := w.callWorker[call]; ok {
		return id
	}
	if len(w.conns) == 0 {
		return ""
	}
	ids := make([]string, 0, len(w.conns))
	for id := range w.conns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	h := fnv.New32a()
	_, _ = h.Write([]byte(call))
	id := ids[h.Sum32()%uint32(len(ids))]
	w.callWorker[call] = id
	return id
}

// callChanged hands the call's new sockets to its worker.
func (w *workers) callChanged(call string) {
	id := w.pick(call)
	w.mu.Lock()
	wc := w.conns[id]
	w.mu.Unlock()
	if wc != nil {
		w.sendCall(wc, call)
	}
}

// released tells the workers of released pairs to close their copies.
func (w *workers) released(pairs []*pair) {
	byWorker := map[string][]fdpass.Item{}
	w.mu.Lock()
	for _, p := range pairs {
		id, ok := w.callWorker[p.call]
		if !ok {
			continue
		}
		for _, l := range p.locals() {
			byWorker[id] = append(byWorker[id], fdpass.Item{Meta: handoff.Msg{Op: handoff.OpRemove, Local: l}.Encode(), FD: fdpass.NoFD})
		}
	}
	w.mu.Unlock()
	for id, items := range byWorker {
		w.mu.Lock()
		wc := w.conns[id]
		w.mu.Unlock()
		if wc == nil {
			continue
		}
		wc.mu.Lock()
		for _, it := range items {
			m, _ := handoff.Decode(it.Meta)
			delete(wc.has, m.Local)
		}
		wc.mu.Unlock()
		w.send(wc, items)
	}
}

// callGone forgets the worker of a call that has no sockets any more.
func (w *workers) callGone(call string) {
	w.mu.Lock()
	delete(w.callWorker, call)
	w.mu.Unlock()
}

// sendCall sends wc the call's sockets it does not hold yet.
func (w *workers) sendCall(wc *workerConn, call string) {
	var items []fdpass.Item
	var sent []netip.AddrPort
	for _, s := range w.t.callSockets(call) {
		wc.mu.Lock()
		has := wc.has[s.Local()]
		wc.mu.Unlock()
		if has {
			continue
		}
		fd, err := s.Dup()
		if err != nil {
			if !errors.Is(err, mediasock.ErrClosed) {
				w.log.Error("dup for hand-off failed", "addr", s.Local(), "err", err)
			}
			continue
		}
		items = append(items, fdpass.Item{Meta: handoff.Msg{Op: handoff.OpAdd, Local: s.Local(), Network: s.Network(), Call: call}.Encode(), FD: fd})
		sent = append(sent, s.Local())
	}
	if len(items) == 0 {
		return
	}
	ok := w.send(wc, items)
	for _, it := range items {
		_ = unix.Close(it.FD) // our dups; the worker got its own
	}
	if ok {
		wc.mu.Lock()
		for _, l := range sent {
			wc.has[l] = true
		}
		wc.mu.Unlock()
	}
}

// workerSendTimeout is how long a send to a worker may wait for room in
// its hand-off socket. A worker that does not read for that long (stopped,
// or stuck) is dropped: its connection is closed, and it gets all its
// sockets again when it reconnects, as after a restart.
const workerSendTimeout = 2 * time.Second

// send sends items to wc within workerSendTimeout; on failure it closes
// the connection (the worker reconnects and resyncs) and returns false.
func (w *workers) send(wc *workerConn, items []fdpass.Item) bool {
	wc.sendMu.Lock()
	defer wc.sendMu.Unlock()
	err := wc.conn.SetWriteDeadline(time.Now().Add(workerSendTimeout))
	if err == nil {
		err = wc.conn.Send(items)
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			w.log.Error("worker not reading its hand-off socket; dropping it", "worker", wc.id, "pid", wc.pid, "timeout", workerSendTimeout, "err", err)
		} else {
			w.log.Warn("hand-off to worker failed", "worker", wc.id, "err", err)
		}
		_ = wc.conn.Close()
		return false
	}
	return true
}

// status lists the connected workers.
func (w *workers) status() []portdapi.WorkerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]portdapi.WorkerStatus, 0, len(w.conns))
	for _, wc := range w.conns {
		wc.mu.Lock()
		n := len(wc.has)
		wc.mu.Unlock()
		out = append(out, portdapi.WorkerStatus{ID: wc.id, PID: wc.pid, Sockets: n, Since: wc.since})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// closeFD closes a descriptor received with an item that does not keep it.
func closeFD(fd int) {
	if fd != fdpass.NoFD && fd >= 0 {
		_ = unix.Close(fd)
	}
}
