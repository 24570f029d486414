package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fillcast/fillcast/controlplane/atomicfile"
)

// snapshotJob is a snapshot for Run to write: the state folded
// from every segment numbered below seq.
type snapshotJob struct {
	seq  uint64
	data []byte
}

// rotate seals the last segment, begins the next and hands Run
// a snapshot of the state, which at this point is exactly what the
// sealed segments hold. Encoding it holds appends up for a moment
// (milliseconds for tens of thousands of users), once per SegmentBytes.
// The caller holds l.mu.
func (l *Log) rotate() error {
	if err := l.f.Sync(); err != nil {
		l.broken = fmt.Errorf("events: log unusable after failed fsync: %w", err)
		return err
	}
	l.dirty = false
	next := l.seq + 1
	path := filepath.Join(l.cfg.Dir, segmentName(next))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := atomicfile.SyncDir(l.cfg.Dir); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := l.f.Close(); err != nil {
		l.logger.Warn("events: close sealed segment", "err", err)
	}
	l.f, l.seq, l.size = f, next, 0
	l.stats.Bytes = 0
	job := snapshotJob{seq: next, data: encodeSnapshot(l.state, l.stats.Records, l.stats.Events)}
	// A job still queued is replaced: the new one covers its segments.
	select {
	case <-l.compact:
	default:
	}
	l.compact <- job
	return nil
}

func (l *Log) writeSnapshot(job snapshotJob) error {
	// The snapshot is complete on disk before anything it covers is
	// deleted; a crash in between leaves files Open deletes.
	if err := atomicfile.WriteFile(filepath.Join(l.cfg.Dir, snapshotName(job.seq)), job.data); err != nil {
		return fmt.Errorf("events: write snapshot: %w", err)
	}
	segs, snaps, err := dirFiles(l.cfg.Dir)
	if err != nil {
		return fmt.Errorf("events: compact: %w", err)
	}
	l.removeBefore(job.seq, segs, snaps)
	l.mu.Lock()
	l.first = max(l.first, job.seq)
	l.stats.Compactions++
	l.mu.Unlock()
	return nil
}

// removeBefore deletes the segments and snapshots numbered below seq.
func (l *Log) removeBefore(seq uint64, segs, snaps []uint64) {
	removed := false
	for _, f := range []struct {
		nums []uint64
		name func(uint64) string
	}{{segs, segmentName}, {snaps, snapshotName}} {
		for _, n := range f.nums {
			if n >= seq {
				continue
			}
			if err := os.Remove(filepath.Join(l.cfg.Dir, f.name(n))); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.logger.Warn("events: remove compacted file", "err", err)
			}
			removed = true
		}
	}
	if removed {
		if err := atomicfile.SyncDir(l.cfg.Dir); err != nil {
			l.logger.Warn("events: compact", "err", err)
		}
	}
}
