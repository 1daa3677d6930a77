package ngserver

import (
	"context"
	"sync"
	"time"
)

// entryOverhead approximates the memory of one cache entry besides its key
// and reply (struct, map slot, queue slot, channel).
const entryOverhead = 160

// cacheEntry is the reply for one cookie, pending until finished.
type cacheEntry struct {
	key string

	// Guarded by replyCache.mu until finished is set; read-only afterwards.
	// done is made only when a duplicate has to wait (most entries never
	// have one: an entry is one allocation less for every request), and
	// closed when the entry is finished.
	done     chan struct{}
	msg      []byte         // the framed reply; nil if the request was abandoned
	stored   time.Time      // when msg was stored
	finished bool           // msg is final (stored or abandoned)
	waiters  []func([]byte) // called with msg once it is stored
}

// replyCache maps cookies to framed replies, pending or stored. Stored
// entries sit in a queue in the order they were stored, which is also the
// order they expire in, so expiry and eviction both take from its front.
type replyCache struct {
	ttl        time.Duration
	maxEntries int
	maxBytes   int
	maxWaiters int
	now        func() time.Time

	mu        sync.Mutex
	byKey     map[string]*cacheEntry // pending and stored entries
	queue     []*cacheEntry          // stored entries, oldest first, from head on
	head      int
	bytes     int    // memory of stored entries
	evictions uint64 // entries dropped by a cap before their TTL
}

func newReplyCache(ttl time.Duration, maxEntries, maxBytes, maxWaiters int, now func() time.Time) *replyCache {
	return &replyCache{
		ttl:        ttl,
		maxEntries: maxEntries,
		maxBytes:   maxBytes,
		maxWaiters: maxWaiters,
		now:        now,
		byKey:      make(map[string]*cacheEntry),
	}
}

// begin looks cookie up. If an entry exists (stored, or pending because its
// first request is being handled), it returns it with owner false. Otherwise
// it adds a pending entry and returns it with owner true: the caller must
// then call finish or abandon exactly once.
func (c *replyCache) begin(cookie []byte) (e *cacheEntry, owner bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(c.now())
	if e := c.byKey[string(cookie)]; e != nil {
		return e, false
	}
	e = &cacheEntry{key: string(cookie)}
	c.byKey[e.key] = e
	return e, true
}

// finish stores msg as the reply of the pending entry e, wakes the
// duplicates waiting for it and calls the queued waiters.
func (c *replyCache) finish(e *cacheEntry, msg []byte) {
	c.mu.Lock()
	now := c.now()
	c.expire(now)
	e.msg, e.stored, e.finished = msg, now, true
	waiters := e.waiters
	e.waiters = nil
	c.queue = append(c.queue, e)
	c.bytes += entrySize(e)
	for c.stored() > c.maxEntries || c.bytes > c.maxBytes {
		c.evictions++
		c.pop()
	}
	done := e.done
	c.mu.Unlock()
	if done != nil {
		close(done)
	}
	for _, w := range waiters {
		w(msg)
	}
}

// abandon removes the pending entry e without a reply: waiting duplicates
// get nil and queued waiters are dropped; the next request with the same
// cookie runs the handler again.
func (c *replyCache) abandon(e *cacheEntry) {
	c.mu.Lock()
	if c.byKey[e.key] == e {
		delete(c.byKey, e.key)
	}
	e.finished = true
	e.waiters = nil
	done := e.done
	c.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// waitChan returns a channel closed when e is finished, or finished true
// (and no channel) if it already is; e.msg may then be read.
func (c *replyCache) waitChan(e *cacheEntry) (ch <-chan struct{}, finished bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.finished {
		return nil, true
	}
	if e.done == nil {
		e.done = make(chan struct{})
	}
	return e.done, false
}

// wait blocks until e has its reply and returns it (nil if the request was
// abandoned), or returns ctx's error.
func (c *replyCache) wait(ctx context.Context, e *cacheEntry) ([]byte, error) {
	done, finished := c.waitChan(e)
	if finished {
		return e.msg, nil
	}
	select {
	case <-done:
		return e.msg, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waitState says what [replyCache.onDone] did.
type waitState int

const (
	waitQueued waitState = iota // f will be called when the reply is stored
	waitDone                    // the entry is final: read e.msg now
	waitFull                    // too many waiters: the request is dropped
)

// onDone queues f to be called with e's reply once it is stored, without
// blocking. If e is already final it returns waitDone and e.msg may be read
// at once.
func (c *replyCache) onDone(e *cacheEntry, f func([]byte)) waitState {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case e.finished:
		return waitDone
	case len(e.waiters) >= c.maxWaiters:
		return waitFull
	}
	e.waiters = append(e.waiters, f)
	return waitQueued
}

// expire drops the stored entries older than the TTL. c.mu is held.
func (c *replyCache) expire(now time.Time) {
	for c.head < len(c.queue) && now.Sub(c.queue[c.head].stored) >= c.ttl {
		c.pop()
	}
}

// pop drops the oldest stored entry. c.mu is held.
func (c *replyCache) pop() {
	e := c.queue[c.head]
	c.queue[c.head] = nil
	c.head++
	if c.byKey[e.key] == e {
		delete(c.byKey, e.key)
	}
	c.bytes -= entrySize(e)
	// Reuse the queue's front once most of it is spent.
	if c.head == len(c.queue) {
		c.queue, c.head = c.queue[:0], 0
	} else if c.head > 1024 && c.head*2 > len(c.queue) {
		n := copy(c.queue, c.queue[c.head:])
		clear(c.queue[n:])
		c.queue, c.head = c.queue[:n], 0
	}
}

// stored is the number of stored entries. c.mu is held.
func (c *replyCache) stored() int { return len(c.queue) - c.head }

// cacheStats is a snapshot of the cache's size and evictions.
type cacheStats struct {
	entries, bytes int
	evictions      uint64
}

func (c *replyCache) stats() cacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(c.now())
	return cacheStats{entries: c.stored(), bytes: c.bytes, evictions: c.evictions}
}

func entrySize(e *cacheEntry) int { return len(e.key) + len(e.msg) + entryOverhead }
