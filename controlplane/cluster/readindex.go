package cluster

import (
	"context"
	"sync"
	"time"
)

// readIndexTimeout bounds one ask of the leader's applied index.
const readIndexTimeout = 2 * time.Second

// readIndexes shares the leader's applied index among the lookups that
// want it at once, so that however many lookups miss (junk session
// tokens included) a node has one question in flight to the leader. A
// caller takes the answer of a round that started after it arrived,
// since only that one covers the writes it must see: it joins the round
// in flight if that is one, else waits for it and starts (or joins) the
// next.
type readIndexes struct {
	mu      sync.Mutex
	started uint64     // rounds started so far
	cur     *readRound // in flight, or nil
}

type readRound struct {
	seq   uint64
	done  chan struct{}
	index uint64
	err   error
}

// get returns an applied index of the leader read after the call began,
// asking with fetch when no round that serves this caller is in flight.
func (q *readIndexes) get(ctx context.Context, fetch func(context.Context) (uint64, error)) (uint64, error) {
	q.mu.Lock()
	arrived := q.started
	for {
		r := q.cur
		if r == nil {
			break
		}
		q.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if r.seq > arrived {
			return r.index, r.err
		}
		q.mu.Lock()
	}
	q.started++
	r := &readRound{seq: q.started, done: make(chan struct{})}
	q.cur = r
	q.mu.Unlock()
	// Others wait on this round: it must not end with this caller's
	// context.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readIndexTimeout)
	r.index, r.err = fetch(fctx)
	cancel()
	q.mu.Lock()
	q.cur = nil
	q.mu.Unlock()
	close(r.done)
	return r.index, r.err
}
