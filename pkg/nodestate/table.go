package nodestate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Op says what happened to a record.
type Op int

const (
	// OpPut means the record was created or replaced.
	OpPut Op = iota
	// OpDelete means the record was deleted.
	OpDelete
)

// String names the operation.
func (o Op) String() string {
	if o == OpDelete {
		return "delete"
	}
	return "put"
}

// Entry is one record with its revision.
type Entry[T any] struct {
	ID       string
	Value    T
	Revision uint64
	Op       Op
}

// Table is the set of records of one kind (the key prefix) in a Store,
// encoded as JSON.
type Table[T any] struct {
	s    *Store
	kind string
}

// NewTable returns the table of records of the given kind ("call", ...).
// kind must be letters, digits, '-' or '_'.
func NewTable[T any](s *Store, kind string) *Table[T] {
	return &Table[T]{s: s, kind: kind}
}

// key is the record's key: the kind and the id's fixed-length token.
func (t *Table[T]) key(id string) string { return t.kind + "." + KeyToken(id) }

// entryID returns the id of a stored entry of this table (from its record,
// or a delete marker's body), checked against the entry's key.
func (t *Table[T]) entryID(kve jetstream.KeyValueEntry) (id string, op Op, err error) {
	tok, ok := strings.CutPrefix(kve.Key(), t.kind+".")
	if !ok {
		return "", OpPut, fmt.Errorf("key %q is not of kind %s", kve.Key(), t.kind)
	}
	op = OpPut
	if o := kve.Operation(); o == jetstream.KeyValueDelete || o == jetstream.KeyValuePurge {
		op = OpDelete
	}
	id, err = entryID(tok, op == OpDelete, kve.Value())
	if err != nil {
		return "", op, fmt.Errorf("%s record %s: %w", t.kind, kve.Key(), err)
	}
	return id, op, nil
}

// Get reads the record id.
func (t *Table[T]) Get(ctx context.Context, id string) (Entry[T], error) {
	var e Entry[T]
	if err := checkID(id); err != nil {
		return e, fmt.Errorf("get %s: %w", t.kind, err)
	}
	kve, err := t.s.kv.Get(ctx, t.key(id))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return e, fmt.Errorf("%s %q: %w", t.kind, id, ErrNotFound)
		}
		return e, fmt.Errorf("get %s %q: %w", t.kind, id, err)
	}
	return t.decode(kve)
}

// Put writes the record whatever its current revision.
func (t *Table[T]) Put(ctx context.Context, id string, v T) (uint64, error) {
	data, err := t.Encode(id, v)
	if err != nil {
		return 0, err
	}
	rev, err := t.s.kv.Put(ctx, t.key(id), data)
	if err != nil {
		return 0, fmt.Errorf("put %s %q: %w", t.kind, id, err)
	}
	return rev, nil
}

// PutAsync writes the record with a pipelined publish: it returns once the
// write is on its way, and the future reports the bus's acknowledgement.
// Writes of one connection reach the bucket in order.
func (t *Table[T]) PutAsync(id string, v T) (jetstream.PubAckFuture, error) {
	data, err := t.Encode(id, v)
	if err != nil {
		return nil, err
	}
	f, err := t.s.js.PublishAsync(t.subject(id), data)
	if err != nil {
		return nil, fmt.Errorf("put %s %q: %w", t.kind, id, err)
	}
	return f, nil
}

// Encode returns the record's stored form (JSON), as Put writes it. The
// record must carry its id (Call.ID == id; other kinds an "id" field):
// readers take the id from the record, the key holds only its token.
func (t *Table[T]) Encode(id string, v T) ([]byte, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("encode %s: %w", t.kind, err)
	}
	var data []byte
	var err error
	if c, ok := any(&v).(*Call); ok {
		if c.ID != id {
			return nil, fmt.Errorf("encode %s %q: the record says id %q", t.kind, id, c.ID)
		}
		data, err = marshalCall(c)
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s %q: %w", t.kind, id, err)
	}
	return data, nil
}

// Publish writes a record encoded by Encode with a plain publish on the
// record's subject: the bucket's stream stores it, and no acknowledgement
// comes back. That spares the bus an acknowledgement per write and the
// writer a reply to read and match, but a write the bus refuses or loses
// goes unnoticed here: a writer that uses Publish confirms its writes
// itself, by seeing them come back in its watch of the table (a skip func
// of WatchSkippingRaw sees each record's stored bytes) and by reading back
// (GetRaw) those that do not. While the bus is away the client buffers
// what is published and sends it on reconnecting; an error means the
// write was not even buffered. data must not be modified afterwards.
func (t *Table[T]) Publish(id string, data []byte) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("publish %s: %w", t.kind, err)
	}
	if err := t.s.nc.Publish(t.subject(id), data); err != nil {
		return fmt.Errorf("publish %s %q: %w", t.kind, id, err)
	}
	return nil
}

// PublishDelete deletes the record the way Publish writes one: no
// acknowledgement, the writer confirms.
func (t *Table[T]) PublishDelete(id string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("publish delete %s: %w", t.kind, err)
	}
	if err := t.s.nc.PublishMsg(t.deleteMsg(id)); err != nil {
		return fmt.Errorf("publish delete %s %q: %w", t.kind, id, err)
	}
	return nil
}

// GetRaw returns the stored form of the record id (as Encode made it), or
// ErrNotFound if there is none or it was deleted.
func (t *Table[T]) GetRaw(ctx context.Context, id string) ([]byte, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("get %s: %w", t.kind, err)
	}
	kve, err := t.s.kv.Get(ctx, t.key(id))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil, fmt.Errorf("%s %q: %w", t.kind, id, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s %q: %w", t.kind, id, err)
	}
	return kve.Value(), nil
}

// subject is the bus subject that writes the record id.
func (t *Table[T]) subject(id string) string {
	return "$KV." + t.s.kv.Bucket() + "." + t.key(id)
}

// Delete removes the record. With rev > 0 it does so only if the record is
// still at that revision (ErrConflict otherwise).
func (t *Table[T]) Delete(ctx context.Context, id string, rev uint64) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("delete %s: %w", t.kind, err)
	}
	m := t.deleteMsg(id)
	if rev > 0 {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	}
	if _, err := t.s.js.PublishMsg(ctx, m); err != nil {
		var apiErr *jetstream.APIError
		if rev > 0 && errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return fmt.Errorf("delete %s %q at revision %d: %w", t.kind, id, rev, ErrConflict)
		}
		return fmt.Errorf("delete %s %q: %w", t.kind, id, err)
	}
	return nil
}

// deleteMsg is the delete marker of the record id: the bucket's delete
// operation, with the id as its body (the key holds only the id's token).
func (t *Table[T]) deleteMsg(id string) *nats.Msg {
	m := nats.NewMsg(t.subject(id))
	m.Header.Set("KV-Operation", "DEL")
	m.Data = []byte(id)
	return m
}

// List returns every live record of the table.
func (t *Table[T]) List(ctx context.Context) ([]Entry[T], error) {
	w, err := t.s.kv.Watch(ctx, t.kind+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t.kind, err)
	}
	defer func() { _ = w.Stop() }()
	var out []Entry[T]
	for {
		select {
		case kve, ok := <-w.Updates():
			if !ok {
				return out, fmt.Errorf("list %s: watcher closed", t.kind)
			}
			if kve == nil {
				return out, nil
			}
			e, err := t.decode(kve)
			if err != nil {
				return out, err
			}
			out = append(out, e)
		case <-ctx.Done():
			return out, fmt.Errorf("list %s: %w", t.kind, ctx.Err())
		}
	}
}

// decode returns a stored entry of the table, its id read from the
// record (or the delete marker).
func (t *Table[T]) decode(kve jetstream.KeyValueEntry) (Entry[T], error) {
	e := Entry[T]{Revision: kve.Revision()}
	id, op, err := t.entryID(kve)
	if err != nil {
		return e, err
	}
	e.ID, e.Op = id, op
	if op == OpDelete {
		return e, nil
	}
	if err := t.unmarshal(kve.Value(), &e.Value); err != nil {
		return e, fmt.Errorf("decode %s %q at revision %d: %w", t.kind, id, kve.Revision(), err)
	}
	if c, ok := any(&e.Value).(*Call); ok && c.ID != id {
		return e, fmt.Errorf("decode %s %q at revision %d: %w", t.kind, id, kve.Revision(), errNoID)
	}
	return e, nil
}

// unmarshal decodes a stored record into the zero value v.
func (t *Table[T]) unmarshal(data []byte, v *T) error {
	if c, ok := any(v).(*Call); ok {
		return unmarshalCall(data, c)
	}
	return json.Unmarshal(data, v)
}

// skips asks skip about a stored entry; an entry whose id cannot be read
// is not skipped (decode then reports it).
func (t *Table[T]) skips(kve jetstream.KeyValueEntry, skip SkipFunc) bool {
	id, op, err := t.entryID(kve)
	if err != nil {
		return false
	}
	var raw []byte
	if op == OpPut {
		raw = kve.Value()
	}
	return skip(id, op, raw)
}

// SkipFunc decides, before a change is decoded, whether a watcher drops
// it: id and op name the change, raw is the record's JSON (nil for a
// delete). raw must not be kept or modified; looking into it (for
// example with bytes.Contains) is much cheaper than decoding it.
type SkipFunc func(id string, op Op, raw []byte) bool

// Event is what a Watcher delivers: a record change, or (Synced) the mark
// that every record present when the watch began has been delivered.
type Event[T any] struct {
	Entry[T]
	Synced bool
}

// Watcher follows a table's changes.
type Watcher[T any] struct {
	mu sync.Mutex
	w  jetstream.KeyWatcher // replaced when the bus reconnects
	c  chan Event[T]
}

func (w *Watcher[T]) get() jetstream.KeyWatcher {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w
}

func (w *Watcher[T]) set(kw jetstream.KeyWatcher) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.w = kw
}

// Watch delivers the current records, then Synced, then every change until
// ctx ends or Stop is called. Records that do not decode are logged and
// skipped.
func (t *Table[T]) Watch(ctx context.Context, log *slog.Logger) (*Watcher[T], error) {
	return t.WatchSkippingRaw(ctx, log, nil)
}

// WatchSkippingRaw is Watch, except that changes for which skip returns
// true are dropped before their value is decoded (a reader that wrote the
// record itself has no use for it). skip also sees the record's undecoded
// JSON, so that the decision can depend on what the record says (who
// wrote it) without decoding every record.
func (t *Table[T]) WatchSkippingRaw(ctx context.Context, log *slog.Logger, skip SkipFunc) (*Watcher[T], error) {
	var reconnected <-chan struct{}
	if t.s.conn != nil {
		reconnected = t.s.conn.Reconnected()
	}
	kw, err := t.s.kv.Watch(ctx, t.kind+".*")
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", t.kind, err)
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Watcher[T]{c: make(chan Event[T], 64)}
	w.set(kw)
	go func() {
		defer close(w.c)
		var last uint64 // revision of the last change seen
		synced := false
		// Before Synced, a watch that goes quiet is made again: the
		// client library counts the records a watch starts with, and when
		// some of them are purged meanwhile (ng-ctl purging old delete
		// markers while a daemon starts) that count is never reached and
		// Synced never comes.
		stuck := time.NewTimer(syncStall)
		defer stuck.Stop()
		for {
			select {
			case kve, ok := <-w.get().Updates():
				if !ok {
					return
				}
				if !synced {
					stuck.Reset(syncStall)
				}
				var ev Event[T]
				switch {
				case kve == nil && synced:
					continue // the end of a resumed watch's backlog
				case kve == nil:
					synced, ev.Synced = true, true
				case skip != nil && t.skips(kve, skip):
					last = max(last, kve.Revision())
					continue
				default:
					last = max(last, kve.Revision())
					e, err := t.decode(kve)
					if err != nil {
						log.Warn("skipping undecodable node state record", "key", kve.Key(), "err", err)
						continue
					}
					ev.Entry = e
				}
				select {
				case w.c <- ev:
				case <-ctx.Done():
					return
				}
			case <-stuck.C:
				if synced {
					continue
				}
				log.Debug("node state watch quiet before its first Synced; watching again", "kind", t.kind)
				if !t.rewatch(ctx, w, 0, false, log) {
					return
				}
				stuck.Reset(syncStall)
			case <-reconnected:
				// The server may have restarted and lost the watch's
				// consumer: watch again from the next revision now rather
				// than when the client library notices (10 s and more),
				// so that no daemon misses calls set up meanwhile.
				reconnected = t.s.conn.Reconnected()
				if !t.rewatch(ctx, w, last, synced, log) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return w, nil
}

// syncStall is how long a watch may deliver nothing before its first
// Synced before it is made again.
const syncStall = 2 * time.Second

// rewatch replaces w's watch by one that resumes after revision last (or,
// before the first Synced, starts over: the records already delivered
// come again, which readers of a watch take as the same state). It
// reports false when ctx ended or the watch cannot be made again.
func (t *Table[T]) rewatch(ctx context.Context, w *Watcher[T], last uint64, synced bool, log *slog.Logger) bool {
	var opts []jetstream.WatchOpt
	if synced && last > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(last+1))
	}
	for attempt := 0; ; attempt++ {
		kw, err := t.s.kv.Watch(ctx, t.kind+".*", opts...)
		if err == nil {
			old := w.get()
			w.set(kw)
			_ = old.Stop()
			log.Debug("node state watch resumed after a bus reconnect", "kind", t.kind, "after_revision", last)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt == 0 {
			log.Warn("node state watch not resumed after a bus reconnect; retrying", "kind", t.kind, "err", err)
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return false
		}
	}
}

// C is the channel of events; it is closed when the watch ends.
func (w *Watcher[T]) C() <-chan Event[T] { return w.c }

// Stop ends the watch.
func (w *Watcher[T]) Stop() error { return w.get().Stop() }

// Await waits for the acknowledgements of pipelined writes (PutAsync) and
// returns the first failure.
func Await(ctx context.Context, futs ...jetstream.PubAckFuture) error {
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("node state write not acknowledged: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("node state write not acknowledged: %w", ctx.Err())
		}
	}
	return nil
}
