package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// readIndexTimeout bounds one read-index round (the leader's check, or a
// follower's ask of the leader) and the wait to apply up to its index:
// how long a node cut off from the leader takes to refuse a linearizable
// read.
const readIndexTimeout = 2 * time.Second

// ErrStale refuses a linearizable read on a node that cannot confirm its
// state is current: a leader that no longer reaches a majority, or a
// follower that does not catch up with the leader.
var ErrStale = errors.New("cluster: cannot confirm this node's state is current (is it cut off from the other nodes?)")

// CatchUp waits until this node's state machine reflects every write
// committed before the call, so that reads after it are linearizable
// (the read index of the raft paper, §6.4): the leader takes its commit
// index, confirms it still leads (a heartbeat round answered by a
// majority) and, once per term, that it has committed an entry of its
// own; a follower asks the leader for that index (ReadIndexPath). The
// node then waits to apply up to the index. Concurrent callers share
// rounds. A node with no leader returns ErrNoLeader at once; one that
// cannot confirm or reach the index within readIndexTimeout returns
// ErrStale (or ErrNoLeader): it never answers from state it cannot show
// is current.
//
// Within a ReadScope only the first successful call waits; the later
// ones return at once.
func (n *Node) CatchUp(ctx context.Context) error {
	scope, _ := ctx.Value(readScopeKey{}).(*readScope)
	if scope != nil && scope.current.Load() {
		return nil
	}
	if err := n.catchUp(ctx); err != nil {
		return err
	}
	if scope != nil {
		scope.current.Store(true)
	}
	return nil
}

// ReadScope returns a context for the reads of one client request: the
// first CatchUp in it makes this node's state current, and the others
// then return at once, since every read in the scope comes after that
// point and so sees every write acknowledged before the request began.
// One request thus costs one read-index round, however many records it
// looks up.
func ReadScope(ctx context.Context) context.Context {
	return context.WithValue(ctx, readScopeKey{}, &readScope{})
}

type readScopeKey struct{}

type readScope struct{ current atomic.Bool }

// CatchUpOrRecent is CatchUp for reads that may be stale by at most
// grace while no leader can be reached: when CatchUp fails for want of
// one (ErrNoLeader, ErrStale), it returns nil if this node led or heard
// from a leader within grace, so that such reads (a viewer's session)
// ride out an election; beyond that they fail too.
func (n *Node) CatchUpOrRecent(ctx context.Context, grace time.Duration) error {
	err := n.CatchUp(ctx)
	if (errors.Is(err, ErrNoLeader) || errors.Is(err, ErrStale)) && n.sinceLeader() <= grace {
		return nil
	}
	return err
}

// catchUp is CatchUp without a scope.
func (n *Node) catchUp(ctx context.Context) error {
	var fetch func(context.Context) (uint64, error)
	if n.IsLeader() {
		fetch = n.leaderReadIndex
	} else {
		_, url := n.Leader()
		if url == "" {
			return ErrNoLeader
		}
		fetch = func(ctx context.Context) (uint64, error) { return n.forward(ctx, url+ReadIndexPath, nil) }
	}
	index, err := n.reads.get(ctx, fetch)
	switch {
	case errors.Is(err, ErrNoLeader) || errors.Is(err, ErrStale):
		return err
	case err != nil: // the leader's answer was lost or late: not confirmed
		return fmt.Errorf("%w: %w", ErrStale, err)
	}
	wctx, cancel := context.WithTimeout(ctx, readIndexTimeout)
	defer cancel()
	if err := n.waitApplied(wctx, index); err != nil {
		return fmt.Errorf("%w: %w", ErrStale, err)
	}
	return nil
}

// leaderReadIndex is one round of the leader's read index: an index
// every write committed before the call is at or below, confirmed by a
// majority. The commit index is read before the confirmation, so a
// leader deposed in between cannot pass it off; and it counts only once
// this leader has committed an entry of its own term (a barrier, once per
// term), since until then a new leader's commit index may miss entries
// its predecessor committed.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	term := n.raft.CurrentTerm()
	if n.reads.ownTerm.Load() != term {
		if err := n.waitCtx(ctx, n.raft.Barrier(readIndexTimeout)); err != nil {
			return 0, notLeading(err)
		}
		// The barrier was appended in term or later: storing term can
		// only under-state what is known.
		n.reads.ownTerm.Store(term)
	}
	index := n.raft.CommitIndex()
	if err := n.waitCtx(ctx, n.raft.VerifyLeader()); err != nil {
		return 0, notLeading(err)
	}
	if n.raft.CurrentTerm() != term {
		// Lost and won again meanwhile: index may predate this
		// term's barrier.
		return 0, fmt.Errorf("%w: the term changed during the read", ErrStale)
	}
	return index, nil
}

// notLeading maps the failure of a leader's check to ErrStale.
func notLeading(err error) error {
	return fmt.Errorf("%w: %w", ErrStale, err)
}

// waitApplied waits until this node's state machine reflects every log
// entry up to index: a follower reading its own forwarded write, or any
// node reading at a read index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	for !n.appliedThrough(index) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: log entry %d committed but not yet applied here: %w", index, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// appliedThrough reports whether the state machine reflects every entry
// up to index. The FSM's own index counts commands only: raft does not
// pass it no-ops, barriers and configurations, so a read index that
// points at one of those (a new leader's first entry, say) is reached
// once raft has handed the FSM everything up to it and no command after
// the FSM's last one is among those entries. Entries no longer in the
// log are in a snapshot, which the FSM holds.
func (n *Node) appliedThrough(index uint64) bool {
	from := max(n.fsm.AppliedIndex(), n.reads.reflected.Load())
	if from >= index {
		return true
	}
	if n.raft.AppliedIndex() < index {
		return false
	}
	from = max(from, n.lastSnapshotIndex())
	for i := from + 1; i <= index; i++ {
		var l raft.Log
		switch err := n.wal.GetLog(i, &l); {
		case errors.Is(err, raft.ErrLogNotFound): // in a snapshot
		case err != nil:
			return false
		case l.Type == raft.LogCommand:
			return false // the FSM has not applied it yet: look again
		}
	}
	n.reads.reflectedUpTo(index)
	return true
}

// lastSnapshotIndex is the index of the newest snapshot (zero for none):
// the state machine holds every entry up to it, though after a restore
// its own index does not say so.
func (n *Node) lastSnapshotIndex() uint64 {
	i, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	return i
}

// Staleness reports how far behind the cluster this node's state may be,
// for reads that allow it: zero while it leads or has heard from a leader
// within the heartbeat timeout; otherwise the time since it last heard
// from one (or stopped leading), or since it started if it never has.
// It understates by up to raft's leader lease (half the heartbeat
// timeout): how long a leader cut off from the others takes to notice.
func (n *Node) Staleness() time.Duration {
	if age := n.sinceLeader(); age > n.cfg.HeartbeatTimeout {
		return age
	}
	return 0
}

// sinceLeader is zero while this node leads, else the time since it last
// heard from a leader or stopped leading (raft notes both), or since it
// started if it never has.
func (n *Node) sinceLeader() time.Duration {
	if n.IsLeader() {
		return 0
	}
	last := n.raft.LastContact()
	if last.IsZero() {
		last = time.Unix(0, n.started)
	}
	return time.Since(last)
}

// readIndexes is a node's read-index state: the rounds in flight, which
// it shares among the reads that want one at once, so that however many
// reads arrive (junk session tokens included) a node has one question in
// flight; the term the node has committed an entry of as leader; and how
// far the state machine is known to reflect the log. A caller takes the
// answer of a round that started after it arrived, since only that one
// covers the writes it must see: it joins the round in flight if that is
// one, else waits for it and starts (or joins) the next.
type readIndexes struct {
	mu      sync.Mutex
	started uint64     // rounds started so far
	cur     *readRound // in flight, or nil
	// ownTerm is the last term in which this node, leading, committed a
	// barrier.
	ownTerm atomic.Uint64
	// reflected is an index up to which the state machine is known to
	// reflect the log (see appliedThrough).
	reflected atomic.Uint64
}

type readRound struct {
	seq   uint64
	done  chan struct{}
	index uint64
	err   error
}

// reflectedUpTo raises reflected to index.
func (q *readIndexes) reflectedUpTo(index uint64) {
	for {
		cur := q.reflected.Load()
		if cur >= index || q.reflected.CompareAndSwap(cur, index) {
			return
		}
	}
}

// get returns a read index taken after the call began, asking with fetch
// when no round that serves this caller is in flight.
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
