package embedded

import (
	"context"
	"sync"
)

// NewLocal returns a Store over a State of its own in this process: the
// same state machine without raft, for tests and tools of one process.
func NewLocal() *Store {
	var mu sync.RWMutex
	s := NewState()
	return NewStore(
		func(_ context.Context, c Command) error {
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
		},
		func(fn func(*State)) {
			mu.RLock()
			defer mu.RUnlock()
			fn(s)
		},
		nil,
	)
}
