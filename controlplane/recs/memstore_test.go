package recs_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/fillcast/fillcast/controlplane/recs"
)

// memStore is an in-memory ModelStore shared by the Services of one
// test, as the event stream's object store is by the nodes: it holds the
// latest model, and every put closes and replaces a channel that wakes
// the watchers. A watcher that falls behind gets the latest model only,
// as from a real store.
type memStore struct {
	// refuse makes PutModel fail, as a store that is down.
	refuse atomic.Bool

	mu      sync.Mutex
	data    []byte
	version uint64
	changed chan struct{}
}

var _ recs.ModelStore = (*memStore)(nil)

var errRefused = errors.New("memstore: refusing puts")

func newMemStore() *memStore { return &memStore{changed: make(chan struct{})} }

func (s *memStore) PutModel(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.refuse.Load() {
		return errRefused
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = bytes.Clone(data)
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func (s *memStore) WatchModel(ctx context.Context, fn func(data []byte)) error {
	var seen uint64
	for {
		s.mu.Lock()
		data, version, changed := s.data, s.version, s.changed
		s.mu.Unlock()
		if version != seen {
			seen = version
			fn(data)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// puts returns the number of models put.
func (s *memStore) puts() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}
