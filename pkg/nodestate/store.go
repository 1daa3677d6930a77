package nodestate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtpkit/rtpkit/pkg/bus"
)

// Options tunes the bucket when it is created, and the store's pipelined
// writes.
type Options struct {
	// Memory keeps the bucket in memory instead of on file storage (tests,
	// throw-away nodes). A bucket that already exists keeps its storage.
	Memory bool
	// OnWriteError, if set, is called for every pipelined write of this
	// store (PutAsync) that the bus refused, lost in a reconnect, or did
	// not acknowledge within WriteTimeout, with the record's kind and id.
	// A writer that sets it need not watch the futures PutAsync returns
	// (not asking a future for its outcome costs nothing). It runs on the
	// bus client's goroutines, sometimes with the client's publish lock
	// held: it must return quickly and must not write to the store.
	OnWriteError func(kind, id string, err error)
	// WriteTimeout is how long a pipelined write waits for its
	// acknowledgement before OnWriteError reports it (default
	// DefaultWriteTimeout). Only used with OnWriteError.
	WriteTimeout time.Duration
}

// DefaultWriteTimeout is Options.WriteTimeout's default.
const DefaultWriteTimeout = 10 * time.Second

// Store is a node's state bucket.
type Store struct {
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	node string
	nc   *nats.Conn
	// conn tells watches when the bus reconnected (nil in stores opened
	// without one).
	conn *bus.Conn
}

// BucketName is the bucket holding node's state. Its version (v2: keys
// are the ids' fixed-length tokens, see KeyToken) changes whenever the
// key layout does, so that no process ever reads keys of another layout;
// a bucket of an older layout is left alone (see docs/operations.md).
func BucketName(node string) string { return "rtpkit-v2-" + node }

// Open opens the node's bucket, creating it if it does not exist yet.
func Open(ctx context.Context, c *bus.Conn, opts Options) (*Store, error) {
	name := BucketName(c.Node())
	var js jetstream.JetStream
	var err error
	if opts.OnWriteError != nil {
		timeout := opts.WriteTimeout
		if timeout <= 0 {
			timeout = DefaultWriteTimeout
		}
		prefix := "$KV." + name + "."
		report := opts.OnWriteError
		js, err = jetstream.New(c.NC,
			jetstream.WithPublishAsyncTimeout(timeout),
			jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
				if kind, id, ok := recordOfMsg(prefix, m); ok {
					report(kind, id, err)
				}
			}))
		if err != nil {
			err = fmt.Errorf("jetstream: %w", err)
		}
	} else {
		js, err = c.JetStream()
	}
	if err != nil {
		return nil, err
	}
	// A JetStream API request that gets no answer (seen with nats-server
	// 2.9 while several daemons create the bucket at once on a loaded
	// host) is asked again rather than waited for until ctx ends.
	var kv jetstream.KeyValue
	for {
		actx, cancel := context.WithTimeout(ctx, openAttemptTimeout)
		kv, err = openBucket(actx, js, name, c.Node(), opts.Memory)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("open node state %s: the bus has no JetStream (start nats-server with -js): %w", name, err)
		}
		return nil, fmt.Errorf("open node state %s: %w", name, err)
	}
	return &Store{js: js, kv: kv, node: c.Node(), nc: c.NC, conn: c}, nil
}

// openAttemptTimeout bounds one attempt of Open to find or create the
// bucket.
const openAttemptTimeout = 2 * time.Second

// openBucket finds the node's bucket, or creates it.
func openBucket(ctx context.Context, js jetstream.JetStream, name, node string, memory bool) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, name)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	storage := jetstream.FileStorage
	if memory {
		storage = jetstream.MemoryStorage
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "rtpkit node state of " + node,
		History:     1,
		Storage:     storage,
	})
	if err != nil {
		// Another daemon of the node may have created it meanwhile; servers
		// report that race differently (2.9: "subjects overlap"), so look
		// the bucket up again before giving up.
		if kv2, err2 := js.KeyValue(ctx, name); err2 == nil {
			return kv2, nil
		}
	}
	return kv, err
}

// recordOfMsg returns the kind and id of the record a write (a message on
// prefix + "<kind>.<key token>") writes or deletes: the id is in the
// record, or is the body of a delete marker.
func recordOfMsg(prefix string, m *nats.Msg) (kind, id string, ok bool) {
	rest, ok := strings.CutPrefix(m.Subject, prefix)
	if !ok {
		return "", "", false
	}
	kind, tok, ok := strings.Cut(rest, ".")
	if !ok {
		return "", "", false
	}
	deleted := m.Header.Get("KV-Operation") != ""
	id, err := entryID(tok, deleted, m.Data)
	return kind, id, err == nil
}

// Bytes is how much the bucket holds (records and delete markers),
// as the bus's stream counts it.
func (s *Store) Bytes(ctx context.Context) (int64, error) {
	name := "KV_" + BucketName(s.node)
	stream, err := s.js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("node state size: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("node state size: %w", err)
	}
	return int64(info.State.Bytes), nil
}

// Node is the node whose state this is.
func (s *Store) Node() string { return s.node }

// purgeWorkers is how many purge requests PurgeDeletes keeps in flight.
const purgeWorkers = 4

// PurgeDeletes removes the delete markers (ended records) older than age
// from the bucket, so that it does not grow with every call that ever
// ended and a daemon start does not replay them all; it returns how many
// it removed. It reads only the entries' headers, and purges each marker
// by its own subject up to its own revision, so a record written again
// under the same key after the marker is never touched. Markers are purged
// while the bucket is still being read, a few requests at a time, so a run
// cut short (ctx) keeps what it purged.
//
// A marker younger than age is kept: a watcher that lags behind the
// bucket (or a daemon reconnecting to it) still sees the delete.
func (s *Store) PurgeDeletes(ctx context.Context, age time.Duration) (int, error) {
	name := BucketName(s.node)
	stream, err := s.js.Stream(ctx, "KV_"+name)
	if err != nil {
		return 0, fmt.Errorf("purge delete markers: bucket stream: %w", err)
	}
	w, err := s.kv.WatchAll(ctx, jetstream.MetaOnly())
	if err != nil {
		return 0, fmt.Errorf("purge delete markers: read bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()

	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan jetstream.KeyValueEntry)
	var purged atomic.Int64
	var wg sync.WaitGroup
	prefix := "$KV." + name + "."
	for range purgeWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				err := stream.Purge(wctx, jetstream.WithPurgeSubject(prefix+e.Key()), jetstream.WithPurgeSequence(e.Revision()+1))
				if err != nil {
					cancel(fmt.Errorf("purge %s at revision %d: %w", e.Key(), e.Revision(), err))
					continue
				}
				purged.Add(1)
			}
		}()
	}
	err = feedOldMarkers(wctx, w, time.Now().Add(-age), jobs)
	close(jobs)
	wg.Wait()
	if cause := context.Cause(wctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	if err != nil {
		return int(purged.Load()), fmt.Errorf("purge delete markers: %w", err)
	}
	return int(purged.Load()), nil
}

// feedOldMarkers sends the delete markers w delivers that were written
// before limit to jobs, until w has delivered every entry present when it
// began or ctx ends.
func feedOldMarkers(ctx context.Context, w jetstream.KeyWatcher, limit time.Time, jobs chan<- jetstream.KeyValueEntry) error {
	for {
		var e jetstream.KeyValueEntry
		select {
		case u, ok := <-w.Updates():
			if !ok {
				return errors.New("bucket watch closed")
			}
			if u == nil {
				return nil
			}
			e = u
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if op := e.Operation(); (op != jetstream.KeyValueDelete && op != jetstream.KeyValuePurge) || !e.Created().Before(limit) {
			continue
		}
		select {
		case jobs <- e:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
