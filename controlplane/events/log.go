package events

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileName is the log's file inside Config.Dir.
const FileName = "events.log"

// SyncPolicy says when appended batches reach stable storage.
type SyncPolicy int

const (
	// SyncAlways fsyncs every batch before Append returns: an
	// acknowledged batch survives a power cut. The default.
	SyncAlways SyncPolicy = iota
	// SyncInterval fsyncs at most every Config.SyncEvery from a
	// background goroutine: a crash of the machine (not the process)
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
}

// DefaultConfig returns the configuration for a log in dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, Sync: SyncAlways, SyncEvery: time.Second, Limits: DefaultLimits()}
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("events: config: Dir required")
	}
	if c.Sync < SyncAlways || c.Sync > SyncNone {
		return fmt.Errorf("events: config: unknown Sync policy %d", c.Sync)
	}
	if c.SyncEvery <= 0 {
		c.SyncEvery = time.Second
	}
	c.Limits = c.Limits.withDefaults()
	return nil
}

// Stats describes a log.
type Stats struct {
	// Records and Events count what the file holds.
	Records, Events int64
	// Bytes is the file's length.
	Bytes int64
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
	f      *os.File
	size   int64
	buf    []byte
	dirty  bool
	broken error
	stats  Stats

	state *state

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the log in cfg.Dir, replays it into the
// viewing state and truncates a torn or corrupt tail left by a crash.
// logger and now may be nil (slog.Default, time.Now).
func Open(cfg Config, logger *slog.Logger, now func() time.Time) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("events: open: %w", err)
	}
	path := filepath.Join(cfg.Dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("events: open: %w", err)
	}
	l := &Log{cfg: cfg, logger: logger, now: now, f: f, state: newState()}
	if err := l.replay(); err != nil {
		f.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	if cfg.Sync == SyncInterval {
		l.wg.Add(1)
		go l.syncLoop(ctx)
	}
	return l, nil
}

// replay reads every record, applies it to the state and truncates the
// file at the first record that is short or fails its checksum.
func (l *Log) replay() error {
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("events: replay: %w", err)
	}
	r := bufio.NewReaderSize(l.f, 1<<20)
	var off int64
	var hdr [headerLen]byte
	var payload []byte
	reason := ""
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				reason = "torn record header"
				break
			}
			return fmt.Errorf("events: replay: %w", err)
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n == 0 || n > maxRecordLen {
			reason = fmt.Sprintf("bad record length %d", n)
			break
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				reason = "torn record"
				break
			}
			return fmt.Errorf("events: replay: %w", err)
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			reason = "checksum mismatch"
			break
		}
		batch, err := decodePayload(payload)
		if err != nil {
			reason = "undecodable record"
			break
		}
		l.state.apply(batch)
		l.stats.Records++
		l.stats.Events += int64(len(batch))
		off += headerLen + int64(n)
	}
	end, err := l.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("events: replay: %w", err)
	}
	if end > off {
		// Appends are single writes of whole records, so anything
		// after the last good record is a write the crash cut short
		// (or damage); dropping it keeps the log appendable.
		l.logger.Warn("events: truncating log tail", "path", l.f.Name(), "offset", off,
			"dropped_bytes", end-off, "reason", reason)
		if err := l.f.Truncate(off); err != nil {
			return fmt.Errorf("events: truncate torn tail: %w", err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("events: truncate torn tail: %w", err)
		}
		l.stats.TruncatedBytes = end - off
	}
	if _, err := l.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("events: replay: %w", err)
	}
	l.size = off
	l.stats.Bytes = off
	return nil
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
	return l.stats
}

func (l *Log) syncLoop(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Sync(); err != nil {
				l.logger.Error("events: periodic fsync", "err", err)
			}
		}
	}
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

// Close stops the background fsync, flushes and closes the file. It is
// safe to call more than once.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.wg.Wait()
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.dirty {
			if err := l.f.Sync(); err != nil {
				l.closeErr = fmt.Errorf("events: close: %w", err)
			}
		}
		if err := l.f.Close(); err != nil && l.closeErr == nil {
			l.closeErr = fmt.Errorf("events: close: %w", err)
		}
		l.f = nil
	})
	return l.closeErr
}
