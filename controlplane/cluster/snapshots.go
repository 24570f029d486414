package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/hashicorp/raft"
)

// Snapshots. The node takes every snapshot of the state itself, from one
// loop (snapshotLoop), one at a time: every SnapshotThreshold entries
// (what raft would take, whose own trigger is off), once the entries
// applied since the last snapshot pass SnapshotBytes, and once after the
// state moved file lists out of titles (an old log or snapshot) and they
// have all been published, so that the old entries leave the disk.
//
// Taking them all here keeps each snapshot's reason and TrailingLogs its
// own. Raft reads TrailingLogs when it compacts the log after a
// snapshot, and (raft-wal being a monotonic log store) nowhere else; the
// loop sets it with ReloadConfig before each snapshot it asks for, and
// no other snapshot can run meanwhile to compact with it. Lowering it
// around one snapshot while raft could take its own by count, which
// would compact with the lowered value and be counted under the loop's
// reason, is what this avoids.

// segmentBytes is the size of the log's segment files. Truncation after
// a snapshot deletes whole segments, so smaller ones than raft-wal's 64
// MiB free the disk in smaller steps (a segment holds more when one
// entry is larger).
const segmentBytes = 16 << 20

// snapshotPoll is how often the loop checks for a snapshot due without
// a new entry: the published file lists, and a failed snapshot retried.
const snapshotPoll = time.Second

// maxSnapshotBackoff bounds the wait before a failed snapshot (a full
// disk) is tried again; the wait doubles from snapshotPoll.
const maxSnapshotBackoff = time.Minute

// Reasons for a snapshot (fillcast_raft_snapshots_total's label).
const (
	reasonCount = "count"      // SnapshotThreshold entries
	reasonSize  = "size"       // SnapshotBytes of entries
	reasonLists = "file_lists" // file lists moved out of titles, published
)

// logBytes measures the entries applied since the last snapshot
// persisted: the state machine (timedFSM) counts, and the node's
// snapshot loop takes a snapshot once they pass a limit.
type logBytes struct {
	limit   int64
	entries uint64
	m       *metrics
	kick    chan struct{} // a snapshot is due

	mu sync.Mutex
	// applied is the bytes and entries applied since New; base what they
	// were when the state of the last snapshot persisted (or restored).
	applied, base logMark
	sizes         []uint32 // the latest entries' sizes, a ring (trailing)
	next          int
}

// logMark is a count of the entries applied.
type logMark struct {
	bytes   int64
	entries uint64
}

func newLogBytes(cfg Config, m *metrics) *logBytes {
	return &logBytes{limit: cfg.SnapshotBytes, entries: cfg.SnapshotThreshold, m: m, kick: make(chan struct{}, 1),
		sizes: make([]uint32, cfg.TrailingLogs)}
}

// add counts an applied entry of n bytes.
func (b *logBytes) add(n int) {
	b.mu.Lock()
	b.applied.bytes += int64(n)
	b.applied.entries++
	b.sizes[b.next] = uint32(min(n, 1<<32-1))
	b.next = (b.next + 1) % len(b.sizes)
	b.m.sinceSnapshot.Set(float64(b.applied.bytes - b.base.bytes))
	due := b.dueLocked() != ""
	b.mu.Unlock()
	if due {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// mark returns the count so far: raft is taking a snapshot of the state
// (on the state machine's goroutine, so no entry is being applied).
func (b *logBytes) mark() logMark {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.applied
}

// persisted starts the count again from mark, a snapshot's, now that it
// is persisted; the entries applied since still count. A snapshot that
// fails to persist changes nothing, and is tried again.
func (b *logBytes) persisted(mark logMark) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if mark.entries > b.base.entries { // not older than a restore
		b.base = mark
	}
	b.m.sinceSnapshot.Set(float64(b.applied.bytes - b.base.bytes))
}

// restored starts the count again: the state was restored from a
// snapshot.
func (b *logBytes) restored() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.base = b.applied
	b.m.sinceSnapshot.Set(0)
}

// due returns the reason of the snapshot due by size or count, if any.
func (b *logBytes) due() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dueLocked()
}

func (b *logBytes) dueLocked() string {
	switch {
	case b.applied.bytes-b.base.bytes > b.limit:
		return reasonSize
	case b.applied.entries-b.base.entries >= b.entries:
		return reasonCount
	}
	return ""
}

// trailing returns how many of the latest entries (at most the ring's
// length, TrailingLogs) add up to no more than budget bytes.
func (b *logBytes) trailing(budget int64) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sum int64
	for k := 1; k <= len(b.sizes); k++ {
		sum += int64(b.sizes[(b.next-k+len(b.sizes))%len(b.sizes)])
		if sum > budget {
			return uint64(k - 1)
		}
	}
	return uint64(len(b.sizes))
}

// snapshotLoop takes the node's snapshots, one at a time, until ctx
// ends; a failed one is tried again after a back-off.
func (n *Node) snapshotLoop(ctx context.Context) {
	tick := time.NewTicker(snapshotPoll)
	defer tick.Stop()
	listsDone := false
	var retry time.Time
	backoff := snapshotPoll
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.logBytes.kick:
		case <-tick.C:
		}
		if time.Now().Before(retry) {
			continue
		}
		// Keep the latest entries up to half the byte budget, at most
		// TrailingLogs of them (the ring's length)...
		reason, trailing := n.logBytes.due(), n.logBytes.trailing(n.cfg.SnapshotBytes/2)
		if reason == "" && !listsDone && n.fsm.ListsMoved() > 0 && !pendingLists(n.fsm) {
			// ...or none: the old entries are what this one is for.
			reason, trailing = reasonLists, 0
		}
		if reason == "" {
			continue
		}
		switch err := n.snapshot(reason, trailing); {
		case err == nil || errors.Is(err, raft.ErrNothingNewToSnapshot):
			listsDone = listsDone || reason == reasonLists
			retry, backoff = time.Time{}, snapshotPoll
		default:
			n.metrics.snapshotFailures.Inc()
			n.log.Warn("cluster: snapshot failed; trying again", "reason", reason, "in", backoff, "err", err)
			retry, backoff = time.Now().Add(backoff), min(2*backoff, maxSnapshotBackoff)
		}
	}
}

func pendingLists(f *fsm.FSM) (pending bool) {
	f.Read(func(s *fsm.State) { pending = len(s.FileLists) > 0 })
	return pending
}

// snapshot has raft take a snapshot that leaves trailing entries in the
// log, and counts it under reason once taken.
func (n *Node) snapshot(reason string, trailing uint64) error {
	rc := n.raft.ReloadableConfig()
	if rc.TrailingLogs != trailing {
		rc.TrailingLogs = trailing
		if err := n.raft.ReloadConfig(rc); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := n.raft.Snapshot().Error(); err != nil {
		return err
	}
	n.metrics.snapshots.WithLabelValues(reason).Inc()
	n.log.Info("cluster: snapshot taken", "reason", reason, "trailing", trailing, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
