package fwd

import (
	"context"
	"fmt"
)

// Ping has every loop apply a no-op command and waits until all of them
// have, or ctx ends: a loop stuck in the packet path, or one that is gone,
// does not answer. rtp-fwd's watchdog probe (pkg/sdnotify).
func (e *Engine) Ping(ctx context.Context) error {
	if e.manual {
		return nil
	}
	e.mu.RLock()
	closed := e.closed
	e.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	done := make(chan error, len(e.loops))
	for i, l := range e.loops {
		select {
		case l.cmds <- &command{op: opPing, done: done}:
			l.wake()
		case <-ctx.Done():
			return fmt.Errorf("forwarding loop %d: command queue full: %w", i, ctx.Err())
		}
	}
	for answered := 0; answered < len(e.loops); answered++ {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("%d of %d forwarding loops answered: %w", answered, len(e.loops), ctx.Err())
		}
	}
	return nil
}
