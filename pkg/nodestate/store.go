package nodestate

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	return &Store{js: js, kv: kv, node: c.Node(), nc: c.NC}, nil
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

// Node is the node whose state this is.
func (s *Store) Node() string { return s.node }

// PurgeDeletes removes the delete markers older than age, so that the
// bucket does not grow with every call that ever ended.
func (s *Store) PurgeDeletes(ctx context.Context, age time.Duration) error {
	if err := s.kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(age)); err != nil {
		return fmt.Errorf("purge delete markers: %w", err)
	}
	return nil
}
