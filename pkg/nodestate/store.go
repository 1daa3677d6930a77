package nodestate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtpkit/rtpkit/pkg/bus"
)

// Options tunes the bucket when it is created.
type Options struct {
	// Memory keeps the bucket in memory instead of on file storage (tests,
	// throw-away nodes). A bucket that already exists keeps its storage.
	Memory bool
}

// Store is a node's state bucket.
type Store struct {
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	node string
}

// BucketName is the bucket holding node's state.
func BucketName(node string) string { return "rtpkit-v1-" + node }

// Open opens the node's bucket, creating it if it does not exist yet.
func Open(ctx context.Context, c *bus.Conn, opts Options) (*Store, error) {
	js, err := c.JetStream()
	if err != nil {
		return nil, err
	}
	name := BucketName(c.Node())
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		storage := jetstream.FileStorage
		if opts.Memory {
			storage = jetstream.MemoryStorage
		}
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      name,
			Description: "rtpkit node state of " + c.Node(),
			History:     1,
			Storage:     storage,
		})
		if err != nil {
			// Another daemon of the node may have created it meanwhile; servers
			// report that race differently (2.9: "subjects overlap"), so look
			// the bucket up again before giving up.
			if kv2, err2 := js.KeyValue(ctx, name); err2 == nil {
				kv, err = kv2, nil
			}
		}
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("open node state %s: the bus has no JetStream (start nats-server with -js): %w", name, err)
		}
		return nil, fmt.Errorf("open node state %s: %w", name, err)
	}
	return &Store{js: js, kv: kv, node: c.Node()}, nil
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
