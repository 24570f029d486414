package fsm

import (
	"errors"
	"io"
)

// Backup takes a consistent copy of the whole state at once (writes go
// on meanwhile) and returns the log index it reflects and a function
// that writes it as a raft snapshot holds it (what Restore reads).
func (f *FSM) Backup() (index uint64, write func(io.Writer) error) {
	f.mu.RLock()
	snap, index := f.snapshotLocked(), f.index
	f.mu.RUnlock()
	return index, func(w io.Writer) error {
		sink := &writerSink{w: w}
		if err := snap.Persist(sink); err != nil {
			return err
		}
		if sink.canceled {
			return errors.New("fsm: snapshot canceled")
		}
		return nil
	}
}

// writerSink is a raft.SnapshotSink over a plain writer.
type writerSink struct {
	w        io.Writer
	canceled bool
}

func (s *writerSink) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *writerSink) Close() error                { return nil }
func (s *writerSink) ID() string                  { return "backup" }
func (s *writerSink) Cancel() error               { s.canceled = true; return nil }
