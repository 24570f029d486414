package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openLog(t *testing.T, dir string, sync SyncPolicy) *Log {
	t.Helper()
	cfg := DefaultConfig(dir)
	cfg.Sync = sync
	l, err := Open(cfg, slog.New(slog.DiscardHandler), func() time.Time { return t0 })
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func ev(user, title, typ string, pos, dur float64, at time.Duration) Event {
	return Event{User: user, Title: title, Type: typ, PositionS: pos, DurationS: dur, TS: t0.Add(-time.Hour + at)}
}

func TestAppendRefusesBadBatchKeepsOthers(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, SyncAlways)
	ctx := context.Background()
	if err := l.Append(ctx, []Event{ev("u1", "a", TypeProgress, 10, 100, 0)}); err != nil {
		t.Fatal(err)
	}
	bad := []Event{ev("u1", "b", TypeProgress, 10, 100, time.Second), ev("u1", "c", "seek", 1, 100, 2*time.Second)}
	err := l.Append(ctx, bad)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Index != 1 || ve.Field != "type" {
		t.Fatalf("Append(bad) = %v, want a ValidationError for event 1 field type", err)
	}
	if err := l.Append(ctx, []Event{ev("u1", "d", TypeProgress, 20, 100, 3*time.Second)}); err != nil {
		t.Fatal(err)
	}
	check := func(l *Log) {
		t.Helper()
		h := l.History("u1", 0)
		var got []string
		for _, e := range h.ContinueWatching {
			got = append(got, e.Title)
		}
		if want := []string{"d", "a"}; !equal(got, want) {
			t.Errorf("continue watching = %v, want %v", got, want)
		}
		if got, want := l.Stats().Records, int64(2); got != want {
			t.Errorf("records = %d, want %d", got, want)
		}
	}
	check(l)
	l.Close()
	check(openLog(t, dir, SyncAlways))
}

func TestReopenAndTornTail(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, path string, sizes []int64)
		records int64
	}{
		{"clean", func(*testing.T, string, []int64) {}, 3},
		{"torn payload", func(t *testing.T, p string, s []int64) { truncate(t, p, s[1]+5) }, 2},
		{"torn header", func(t *testing.T, p string, s []int64) { truncate(t, p, s[0]+3) }, 1},
		{"bad checksum", func(t *testing.T, p string, s []int64) { flip(t, p, s[2]-2) }, 2},
		{"garbage tail", func(t *testing.T, p string, s []int64) { appendBytes(t, p, []byte{0xff, 0xff, 0xff, 0xff, 1}) }, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, SyncInterval)
			var sizes []int64
			for i, title := range []string{"a", "b", "c"} {
				if err := l.Append(context.Background(), []Event{ev("u", title, TypeComplete, 0, 50, time.Duration(i)*time.Second)}); err != nil {
					t.Fatal(err)
				}
				sizes = append(sizes, l.Stats().Bytes)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatalf("second Close = %v", err)
			}
			path := filepath.Join(dir, segmentName(1))
			tt.damage(t, path, sizes)

			l2 := openLog(t, dir, SyncAlways)
			if got := l2.Stats().Records; got != tt.records {
				t.Fatalf("records after reopen = %d, want %d", got, tt.records)
			}
			if got, want := len(l2.Finished("u")), int(tt.records); got != want {
				t.Errorf("finished titles = %d, want %d", got, want)
			}
			// The log must stay appendable after a truncated tail.
			if err := l2.Append(context.Background(), []Event{ev("u", "z", TypeComplete, 0, 50, time.Minute)}); err != nil {
				t.Fatal(err)
			}
			l2.Close()
			l3 := openLog(t, dir, SyncAlways)
			if got, want := l3.Stats().Records, tt.records+1; got != want {
				t.Errorf("records after append and reopen = %d, want %d", got, want)
			}
			if got := l3.Stats().TruncatedBytes; got != 0 {
				t.Errorf("second reopen truncated %d bytes, want 0", got)
			}
		})
	}
}

func TestAppendAfterClose(t *testing.T) {
	l := openLog(t, t.TempDir(), SyncNone)
	l.Close()
	if err := l.Append(context.Background(), []Event{good()}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestHistory(t *testing.T) {
	l := openLog(t, t.TempDir(), SyncNone)
	batch := []Event{
		ev("u", "a", TypePlay, 0, 0, 0),
		ev("u", "a", TypeProgress, 300, 1000, time.Second),
		ev("u", "b", TypePlay, 0, 100, 2*time.Second),
		ev("u", "b", TypeStop, 97, 100, 3*time.Second), // in the credits: finished
		ev("u", "c", TypeComplete, 0, 200, 4*time.Second),
		ev("u", "c", TypePlay, 0, 200, 5*time.Second), // rewatch started at 0
		ev("u", "c", TypeProgress, 50, 200, 6*time.Second),
		ev("u", "a", TypeProgress, 100, 1000, -time.Second), // late, older: ignored for position
		ev("v", "a", TypeComplete, 1000, 1000, 0),
	}
	if err := l.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	h := l.History("u", 0)
	wantCW := map[string]float64{"c": 50, "a": 300}
	if len(h.ContinueWatching) != len(wantCW) || h.ContinueWatching[0].Title != "c" {
		t.Fatalf("continue watching = %+v, want c then a", h.ContinueWatching)
	}
	for _, e := range h.ContinueWatching {
		if got, want := e.PositionS, wantCW[e.Title]; got != want {
			t.Errorf("%s position = %g, want %g", e.Title, got, want)
		}
	}
	var fin []string
	for _, e := range h.Finished {
		fin = append(fin, e.Title)
	}
	if want := []string{"c", "b"}; !equal(fin, want) {
		t.Errorf("finished = %v, want %v", fin, want)
	}
	watch := l.TitleWatchSeconds()
	if got, want := watch["a"], 300.0+1000; got != want {
		t.Errorf("watch seconds a = %g, want %g", got, want)
	}
	weights := map[string]float64{}
	for _, in := range l.Interactions() {
		if in.User == "u" {
			weights[in.Title] = in.Weight
		}
	}
	if got, want := weights, map[string]float64{"a": 0.3, "b": 1, "c": 1}; len(got) != 3 || got["a"] != want["a"] || got["b"] != 1 || got["c"] != 1 {
		t.Errorf("weights = %v, want %v", got, want)
	}
	if got := l.History("nobody", 5); len(got.ContinueWatching)+len(got.Finished) != 0 {
		t.Errorf("unknown user history = %+v, want empty", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, p []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(p); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryBounded: a user's history keeps at most MaxTitlesPerUser
// titles, forgetting the one updated longest ago; an event without a user
// is refused by Append.
func TestHistoryBounded(t *testing.T) {
	l := openLog(t, t.TempDir(), SyncInterval)
	ctx := context.Background()
	batch := make([]Event, 0, MaxTitlesPerUser+1)
	for i := range MaxTitlesPerUser + 1 {
		batch = append(batch, ev("u1", fmt.Sprintf("t%d", i), TypeProgress, 10, 100, time.Duration(i)*time.Millisecond))
	}
	if err := l.Append(ctx, batch); err != nil {
		t.Fatal(err)
	}
	h := l.History("u1", 0)
	if n := len(h.ContinueWatching); n != MaxTitlesPerUser {
		t.Errorf("history of %d titles, want %d", n, MaxTitlesPerUser)
	}
	for _, e := range h.ContinueWatching {
		if e.Title == "t0" {
			t.Error("the oldest title is still in the history")
		}
	}
	var ve *ValidationError
	if err := l.Append(ctx, []Event{ev("", "t1", TypePlay, 0, 0, 0)}); !errors.As(err, &ve) || ve.Field != "user" {
		t.Errorf("Append without a user: %v, want a ValidationError on user", err)
	}
}
