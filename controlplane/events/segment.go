package events

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fillcast/fillcast/controlplane/atomicfile"
)

// On disk, Config.Dir holds the log as numbered segment files,
// events-<seq>.log, each a sequence of records (see record.go), and at
// most one history snapshot, history-<seq>.snap, the state folded from
// every segment numbered below seq. Appends go to the highest segment;
// when it reaches Config.SegmentBytes it is sealed, a new one begun, and
// the state so far written as a snapshot, after which the segments it
// covers are deleted. Open loads the snapshot and replays the segments
// from seq on.
const (
	segmentPrefix  = "events-"
	segmentSuffix  = ".log"
	snapshotPrefix = "history-"
	snapshotSuffix = ".snap"
	tmpSuffix      = atomicfile.TmpSuffix
)

// ErrCorrupt reports a snapshot, or a segment before the last, that
// fails its checksum: damage, not a write cut short by a crash (those
// can only be at the end of the last segment, and are truncated).
var ErrCorrupt = errors.New("events: corrupt log")

func segmentName(seq uint64) string {
	return fmt.Sprintf("%s%020d%s", segmentPrefix, seq, segmentSuffix)
}

func snapshotName(seq uint64) string {
	return fmt.Sprintf("%s%020d%s", snapshotPrefix, seq, snapshotSuffix)
}

// dirFiles lists the segment and snapshot numbers in dir, ascending,
// and removes temporary files a crash left behind.
func dirFiles(dir string) (segments, snapshots []uint64, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	seq := func(name, prefix, suffix string) (uint64, bool) {
		s, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return 0, false
		}
		if s, ok = strings.CutSuffix(s, suffix); !ok {
			return 0, false
		}
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil && n > 0
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			os.Remove(filepath.Join(dir, name))
		} else if n, ok := seq(name, segmentPrefix, segmentSuffix); ok {
			segments = append(segments, n)
		} else if n, ok := seq(name, snapshotPrefix, snapshotSuffix); ok {
			snapshots = append(snapshots, n)
		}
	}
	slices.Sort(segments)
	slices.Sort(snapshots)
	return segments, snapshots, nil
}

// replayResult is what replaying one segment found.
type replayResult struct {
	records, events int64
	good            int64  // offset after the last good record
	reason          string // why reading stopped before the end, "" at the end
}

// replaySegment applies every good record of f to s, stopping at the
// first record that is short or fails its checksum.
func replaySegment(f *os.File, s *state) (replayResult, error) {
	var res replayResult
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [headerLen]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return res, nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				res.reason = "torn record header"
				return res, nil
			}
			return res, err
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n == 0 || n > maxRecordLen {
			res.reason = fmt.Sprintf("bad record length %d", n)
			return res, nil
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				res.reason = "torn record"
				return res, nil
			}
			return res, err
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			res.reason = "checksum mismatch"
			return res, nil
		}
		batch, err := decodePayload(payload)
		if err != nil {
			res.reason = "undecodable record"
			return res, nil
		}
		s.apply(batch)
		res.records++
		res.events += int64(len(batch))
		res.good += headerLen + int64(n)
	}
}

// recover rebuilds the state from the snapshot and the segments, and
// opens the last segment for appending.
func (l *Log) recover() error {
	dir := l.cfg.Dir
	legacy := filepath.Join(dir, legacyFileName)
	segs, snaps, err := dirFiles(dir)
	if err != nil {
		return fmt.Errorf("events: open: %w", err)
	}
	if _, err := os.Stat(legacy); err == nil && len(segs) == 0 && len(snaps) == 0 {
		if err := os.Rename(legacy, filepath.Join(dir, segmentName(1))); err != nil {
			return fmt.Errorf("events: adopt %s: %w", legacy, err)
		}
		segs = []uint64{1}
	}
	from := uint64(1)
	if len(snaps) > 0 {
		from = snaps[len(snaps)-1]
		path := filepath.Join(dir, snapshotName(from))
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("events: open: %w", err)
		}
		s, records, events, err := decodeSnapshot(b)
		if err != nil {
			return fmt.Errorf("%w: snapshot %s fails its checksum or does not decode; move it away to start with the segments alone", ErrCorrupt, path)
		}
		l.state, l.stats.Records, l.stats.Events = s, records, events
	}
	// Leftovers of a compaction that a crash interrupted after its
	// snapshot was in place: the snapshot already holds them.
	l.removeBefore(from, segs, snaps)
	live := segs[:0]
	for _, n := range segs {
		if n >= from {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		live = append(live, from)
	}
	l.first = live[0]
	for i, n := range live {
		last := i == len(live)-1
		path := filepath.Join(dir, segmentName(n))
		flags := os.O_RDONLY
		if last {
			flags = os.O_RDWR | os.O_CREATE
		}
		f, err := os.OpenFile(path, flags, 0o644)
		if err != nil {
			return fmt.Errorf("events: open: %w", err)
		}
		res, err := replaySegment(f, l.state)
		if err != nil {
			f.Close()
			return fmt.Errorf("events: replay %s: %w", path, err)
		}
		l.stats.Records += res.records
		l.stats.Events += res.events
		if !last {
			f.Close()
			if res.reason != "" {
				return fmt.Errorf("%w: segment %s at offset %d: %s", ErrCorrupt, path, res.good, res.reason)
			}
			continue
		}
		l.f, l.seq = f, n
		if err := l.truncateTail(res); err != nil {
			return err
		}
	}
	return nil
}

// truncateTail cuts the last segment after its last good record.
func (l *Log) truncateTail(res replayResult) error {
	end, err := l.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("events: replay: %w", err)
	}
	if end > res.good {
		// Appends are single writes of whole records, so anything
		// after the last good record is a write the crash cut short
		// (or damage); dropping it keeps the log appendable.
		l.logger.Warn("events: truncating log tail", "path", l.f.Name(), "offset", res.good,
			"dropped_bytes", end-res.good, "reason", res.reason)
		if err := l.f.Truncate(res.good); err != nil {
			return fmt.Errorf("events: truncate torn tail: %w", err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("events: truncate torn tail: %w", err)
		}
		l.stats.TruncatedBytes = end - res.good
	}
	if _, err := l.f.Seek(res.good, io.SeekStart); err != nil {
		return fmt.Errorf("events: replay: %w", err)
	}
	l.size = res.good
	l.stats.Bytes = res.good
	return nil
}
