package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// openCfg opens a log and runs it (compaction happens in Run); the
// function returned stops Run, which writes a snapshot still queued,
// and closes the log.
func openCfg(t *testing.T, cfg Config) (*Log, func() error) {
	t.Helper()
	l, err := Open(cfg, slog.New(slog.DiscardHandler), func() time.Time { return t0 })
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	stop := func() error {
		cancel()
		<-done
		return l.Close()
	}
	t.Cleanup(func() { stop() })
	return l, stop
}

// viewing appends n batches of sessions of 20 users over 30 titles.
func viewing(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		u, title := fmt.Sprintf("user-%d", i%20), fmt.Sprintf("t%d", i%30)
		at := time.Duration(i) * time.Second
		batch := []Event{
			ev(u, title, TypePlay, 0, 0, at),
			ev(u, title, TypeProgress, float64(i%7)*100, 1000, at+time.Millisecond),
		}
		if i%3 == 0 {
			batch = append(batch, ev(u, title, TypeComplete, 1000, 1000, at+2*time.Millisecond))
		}
		if err := l.Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshotOf is everything a log derives from its events.
type snapshotOf struct {
	History      []History
	Interactions []Interaction
	Watch        map[string]float64
	Records      int64
	Events       int64
}

func derived(l *Log) snapshotOf {
	s := snapshotOf{Watch: l.TitleWatchSeconds(), Records: l.Stats().Records, Events: l.Stats().Events}
	for i := range 20 {
		s.History = append(s.History, l.History(fmt.Sprintf("user-%d", i), 0))
	}
	s.Interactions = l.Interactions()
	slices.SortFunc(s.Interactions, func(a, b Interaction) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Title, b.Title))
	})
	return s
}

func files(t *testing.T, dir string) (segs, snaps []uint64) {
	t.Helper()
	segs, snaps, err := dirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return segs, snaps
}

func TestCompactionKeepsHistory(t *testing.T) {
	ref := openLog(t, t.TempDir(), SyncNone) // one segment, never compacted
	viewing(t, ref, 400)
	want := derived(ref)

	dir := t.TempDir()
	cfg := DefaultConfig(dir)
	cfg.SegmentBytes = 4 << 10
	l, stop := openCfg(t, cfg)
	viewing(t, l, 400)
	if got := derived(l); !reflect.DeepEqual(got, want) {
		t.Fatalf("state with compaction differs from the state without")
	}
	if err := stop(); err != nil { // writes the compaction queued
		t.Fatal(err)
	}
	if got := l.Stats().Compactions; got == 0 {
		t.Fatalf("compactions = 0, want some with 4 KiB segments")
	}
	segs, snaps := files(t, dir)
	if len(snaps) != 1 || len(segs) > 2 || segs[0] != snaps[0] {
		t.Fatalf("files after compaction: segments %v, snapshots %v; want one snapshot and the segments from it on", segs, snaps)
	}

	l2, stop2 := openCfg(t, cfg)
	if got := derived(l2); !reflect.DeepEqual(got, want) {
		t.Errorf("state after restart from the snapshot differs:\n got %+v\nwant %+v", got.History[0], want.History[0])
	}
	// The log goes on, and a restart still agrees.
	viewing(t, l2, 50)
	viewing(t, ref, 50)
	stop2()
	l3, _ := openCfg(t, cfg)
	if got, want := derived(l3), derived(ref); !reflect.DeepEqual(got, want) {
		t.Errorf("state after appends and a second restart differs")
	}
}

func TestCompactionCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig(dir)
	cfg.SegmentBytes = 4 << 10
	l, stop := openCfg(t, cfg)
	viewing(t, l, 200)
	want := derived(l)
	stop()
	segs, snaps := files(t, dir)
	// A crash after the snapshot was renamed into place, before the
	// segments it covers were deleted; and one while writing a snapshot.
	old := segs[0] - 1
	if err := os.WriteFile(filepath.Join(dir, segmentName(old)), []byte("garbage that never replays"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, snapshotName(snaps[0]+5)+tmpSuffix), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	l2, _ := openCfg(t, cfg)
	if got := derived(l2); !reflect.DeepEqual(got, want) {
		t.Errorf("state after restart with leftovers differs")
	}
	segs2, snaps2 := files(t, dir)
	if slices.Contains(segs2, old) || !slices.Equal(snaps2, snaps) {
		t.Errorf("leftovers not removed: segments %v, snapshots %v", segs2, snaps2)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == tmpSuffix {
			t.Errorf("temporary file %s left", e.Name())
		}
	}
}

func TestCorruptionDetected(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"sealed segment", func(t *testing.T, dir string) {
			// Two segments; the first, sealed, is damaged mid-file.
			b, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, segmentName(2)), b, 0o644); err != nil {
				t.Fatal(err)
			}
			flip(t, filepath.Join(dir, segmentName(1)), 12)
		}},
		{"snapshot", func(t *testing.T, dir string) {
			cfg := DefaultConfig(dir)
			cfg.SegmentBytes = 4 << 10
			l, stop := openCfg(t, cfg)
			viewing(t, l, 100)
			stop()
			_, snaps := files(t, dir)
			if len(snaps) == 0 {
				t.Fatal("no snapshot written")
			}
			flip(t, filepath.Join(dir, snapshotName(snaps[len(snaps)-1])), int64(snapHeaderLen)+3)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, SyncAlways)
			viewing(t, l, 10)
			l.Close()
			tt.damage(t, dir)
			_, err := Open(DefaultConfig(dir), slog.New(slog.DiscardHandler), nil)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open of a damaged log = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestLegacyFileAdopted(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, SyncAlways)
	viewing(t, l, 10)
	want := derived(l)
	l.Close()
	if err := os.Rename(filepath.Join(dir, segmentName(1)), filepath.Join(dir, legacyFileName)); err != nil {
		t.Fatal(err)
	}
	if got := derived(openLog(t, dir, SyncAlways)); !reflect.DeepEqual(got, want) {
		t.Errorf("state from a single-file log differs")
	}
}

func TestSegmentBytesValidated(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.SegmentBytes = 100
	if err := cfg.Validate(); err == nil {
		t.Errorf("Validate accepted SegmentBytes 100")
	}
}
