package embedded

import (
	"context"
	"sync"
)

// NewLocal returns a Store over a State of its own in this process: the
// same state machine without raft, for tests and tools of one process.
func NewLocal() *Store {
	apply, read := LocalMachine[Command](NewState())
	return NewStore(apply, read, nil)
}

// LocalMachine returns the apply and read functions of a state machine
// in this process, without raft: apply validates a command, checks it
// against s and applies it under a lock; read calls fn with s under the
// lock. The embedded stores' NewLocal are built on it.
func LocalMachine[C interface{ Validate() error }, S interface {
	Check(C) error
	Apply(C)
}](s S) (apply func(context.Context, C) error, read func(fn func(S))) {
	var mu sync.RWMutex
	apply = func(_ context.Context, c C) error {
		if err := c.Validate(); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if err := s.Check(c); err != nil {
			return err
		}
		s.Apply(c)
		return nil
	}
	read = func(fn func(S)) {
		mu.RLock()
		defer mu.RUnlock()
		fn(s)
	}
	return apply, read
}
