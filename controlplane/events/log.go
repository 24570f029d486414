package events

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
)

// legacyFileName is the single file of logs written before segments;
// Open adopts it as the first segment.
const legacyFileName = "events.log"

// SyncPolicy says when appended batches reach stable storage.
type SyncPolicy int

const (
	// SyncAlways fsyncs every batch before Append returns: an
	// acknowledged batch survives a power cut. The default.
	SyncAlways SyncPolicy = iota
	// SyncInterval fsyncs at most every Config.SyncEvery, from Run: a
	// crash of the machine (not the process)
	// may lose that much acknowledged data.
	SyncInterval
	// SyncNone leaves flushing to the operating system.
	SyncNone
)

// Config configures a Log.
type Config struct {
	// Dir holds the log file; created if missing. Required.
	Dir string
	// Sync is the fsync policy; the zero value is SyncAlways.
	Sync SyncPolicy
	// SyncEvery is the SyncInterval period. Zero means 1 s.
	SyncEvery time.Duration
	// Limits bound the batches DecodeBatch accepts; zero fields mean
	// DefaultLimits.
	Limits Limits
	// SegmentBytes is the size at which the segment being appended to
	// is sealed and the log compacted: the history so far goes into a
	// snapshot and the sealed segments are deleted. Zero means 64 MiB;
	// at least 4 KiB.
	SegmentBytes int64
}

// DefaultConfig returns the configuration for a log in dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, Sync: SyncAlways, SyncEvery: time.Second, Limits: DefaultLimits(), SegmentBytes: 64 << 20}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fillcast.ConfigErrorf("events", "Dir", "required: the directory of the log")
	case c.Sync < SyncAlways || c.Sync > SyncNone:
		return fillcast.ConfigErrorf("events", "Sync", "unknown policy %d", c.Sync)
	case c.SegmentBytes != 0 && c.SegmentBytes < 4<<10:
		return fillcast.ConfigErrorf("events", "SegmentBytes", "%d is below 4 KiB", c.SegmentBytes)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.SyncEvery <= 0 {
		c.SyncEvery = time.Second
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 64 << 20
	}
	c.Limits = c.Limits.withDefaults()
	return c
}

// Stats describes a log.
type Stats struct {
	// Records and Events count what the log has taken in, including
	// what compaction folded into the snapshot.
	Records, Events int64
	// Bytes is the length of the segment being appended to.
	Bytes int64
	// Segments is the number of segment files not yet compacted.
	Segments int
	// Compactions counts the snapshots this process wrote.
	Compactions int64
	// TruncatedBytes is what Open cut off a torn or corrupt tail.
	TruncatedBytes int64
}

// Log is an append-only, checksummed event log with the viewing state
// derived from it. Its methods are safe for concurrent use.
type Log struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time

	mu     sync.Mutex // serialises appends
	f      *os.File   // the last segment, appended to
	seq    uint64     // its number
	first  uint64     // the lowest segment number on disk
	size   int64
	buf    []byte
	dirty  bool
	broken error
	stats  Stats

	state *state

	compact chan snapshotJob // to Run; holds at most one

	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the log in cfg.Dir: it loads the history
// snapshot, replays the segments after it into the viewing state and
// truncates a torn or corrupt tail of the last segment left by a crash.
// Damage anywhere else is an error wrapping ErrCorrupt. logger and now
// may be nil (slog.Default, time.Now). Open starts nothing: Run compacts
// and (with SyncInterval) syncs in the background.
func Open(cfg Config, logger *slog.Logger, now func() time.Time) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("events: open: %w", err)
	}
	l := &Log{cfg: cfg, logger: logger, now: now, state: newState(), compact: make(chan snapshotJob, 1)}
	if err := l.recover(); err != nil {
		if l.f != nil {
			l.f.Close()
		}
		return nil, err
	}
	return l, nil
}

// compactTo writes job's snapshot and deletes what it covers.
func (l *Log) compactTo(job snapshotJob) {
	if err := l.writeSnapshot(job); err != nil {
		// The segments stay, so nothing is lost; the next rotation
		// tries again with a larger snapshot.
		l.logger.Error("events: compact", "err", err)
	}
}

// Run does the log's background work until ctx is done: it writes the
// snapshots that rotations hand it and deletes what they cover, and
// with SyncInterval it fsyncs every SyncEvery. Without Run the log works
// but keeps every segment. Close the log after Run has returned.
func (l *Log) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if l.cfg.Sync == SyncInterval {
		t := time.NewTicker(l.cfg.SyncEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			// A snapshot queued is written first: stopping then leaves
			// the fewest segments to replay at the next start.
			select {
			case job := <-l.compact:
				l.compactTo(job)
			default:
			}
			return nil
		case job := <-l.compact:
			l.compactTo(job)
		case <-tick:
			if err := l.Sync(); err != nil {
				l.logger.Error("events: periodic fsync", "err", err)
			}
		}
	}
}

// Append validates batch and appends it as one record; with SyncAlways
// it is on stable storage when Append returns. An invalid batch is
// refused whole (an error wrapping ErrInvalid) and changes nothing.
// Events without ts are stamped with the node's clock.
func (l *Log) Append(ctx context.Context, batch []Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("events: append: %w", err)
	}
	if len(batch) == 0 {
		return &ValidationError{Index: -1, Reason: "empty batch: send at least one event"}
	}
	now := l.now()
	stamped := make([]Event, len(batch))
	for i := range batch {
		stamped[i] = batch[i]
		if err := stamped[i].Validate(i, now, l.cfg.Limits.MaxClockSkew); err != nil {
			return err
		}
		if stamped[i].User == "" {
			return &ValidationError{Index: i, Field: "user", Reason: "required"}
		}
		stamped[i].StreamID = ""
		if stamped[i].TS.IsZero() {
			stamped[i].TS = now
		}
		stamped[i].TS = stamped[i].TS.UTC()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return ErrClosed
	}
	if l.broken != nil {
		return l.broken
	}
	l.buf = appendRecord(l.buf[:0], stamped)
	if _, err := l.f.Write(l.buf); err != nil {
		// A partial record would hide every later one from replay:
		// cut it off, and stop appending if that fails too.
		if terr := l.f.Truncate(l.size); terr != nil {
			l.broken = fmt.Errorf("events: log unusable after failed write: %w", terr)
		} else if _, serr := l.f.Seek(l.size, io.SeekStart); serr != nil {
			l.broken = fmt.Errorf("events: log unusable after failed write: %w", serr)
		}
		return fmt.Errorf("events: append: %w", err)
	}
	l.size += int64(len(l.buf))
	if l.cfg.Sync == SyncAlways {
		if err := l.f.Sync(); err != nil {
			// After a failed fsync the page cache state is unknown;
			// refuse further writes rather than acknowledge them.
			l.broken = fmt.Errorf("events: log unusable after failed fsync: %w", err)
			return fmt.Errorf("events: append: fsync: %w", err)
		}
	} else {
		l.dirty = true
	}
	l.stats.Records++
	l.stats.Events += int64(len(stamped))
	l.stats.Bytes = l.size
	l.state.apply(stamped)
	if l.size >= l.cfg.SegmentBytes {
		if err := l.rotate(); err != nil {
			// The batch is safe in the current segment, which
			// simply grows until a later rotation succeeds.
			l.logger.Error("events: begin a new segment", "err", err)
		}
	}
	return nil
}

// DecodeBatch is DecodeBatch with the log's limits and clock.
func (l *Log) DecodeBatch(r io.Reader) ([]Event, error) {
	return DecodeBatch(r, l.cfg.Limits, l.now())
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.Segments = int(l.seq - l.first + 1)
	return st
}

// Sync flushes appended batches to stable storage.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return ErrClosed
	}
	if !l.dirty {
		return nil
	}
	if err := l.f.Sync(); err != nil {
		l.broken = fmt.Errorf("events: log unusable after failed fsync: %w", err)
		return fmt.Errorf("events: sync: %w", err)
	}
	l.dirty = false
	return nil
}

// Close flushes and closes the segment; call it once Run has returned.
// It is safe to call more than once.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		if l.dirty {
			if err := l.f.Sync(); err != nil {
				l.closeErr = fmt.Errorf("events: close: %w", err)
			}
		}
		if err := l.f.Close(); err != nil && l.closeErr == nil {
			l.closeErr = fmt.Errorf("events: close: %w", err)
		}
		l.f = nil
		l.mu.Unlock()
	})
	return l.closeErr
}
