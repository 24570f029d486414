package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// TestAdoptObjectsOfTheOldProcess plays a zero-downtime upgrade: the new
// cache opens the directory while the old one still fills; once the old
// one is gone, Adopt makes its late objects hits here, once each, and
// clears its temporary files.
func TestAdoptObjectsOfTheOldProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := newSource()
	early, late := randBytes(t, 50_000), randBytes(t, 70_000)
	src.put("t1/early.m4s", early)
	src.put("t1/late.m4s", late)
	old := newCache(t, dir, src, 0)
	fill := func(c *Cache, key string) {
		t.Helper()
		h, err := c.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		read(t, h) // Stream: the reader, closed, releases the hit
		poll.Until(t, 10*time.Second, "the fill to finish", func() bool { return c.Stats().FillsInFlight == 0 })
	}
	fill(old, "t1/early.m4s")

	upgraded := newCache(t, dir, deadSource{}, 0)
	fill(old, "t1/late.m4s") // while both run
	// A fill of a dead process (not this test's PID) left behind.
	stale := filepath.Join(dir, "tmp", "999999999-1")
	if err := os.WriteFile(stale, []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := upgraded.Lookup("t1/late.m4s"); ok {
		t.Fatal("the late object is indexed before Adopt")
	}
	old.Close()

	for i, want := range []int{1, 0} {
		n, err := upgraded.Adopt(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("Adopt #%d: got %d objects, want %d", i+1, n, want)
		}
	}
	for key, body := range map[string][]byte{"t1/early.m4s": early, "t1/late.m4s": late} {
		h, ok := upgraded.Lookup(key)
		if !ok {
			t.Fatalf("%s: not a hit after Adopt", key)
		}
		if got := read(t, h); !bytes.Equal(got, body) {
			t.Errorf("%s: got %d bytes, want the %d stored", key, len(got), len(body))
		}
	}
	s := upgraded.Stats()
	if got, want := s.DiskObjects, int64(2); got != want {
		t.Errorf("objects: got %d, want %d", got, want)
	}
	if got, want := s.DiskUsed, old.Stats().DiskUsed; got != want {
		t.Errorf("bytes used: got %d, want %d (the old process's count)", got, want)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the dead process's temporary file is still there: %v", err)
	}
}

// TestAdoptForgetsWhatTheOldProcessRemoved: objects the old process
// evicted or purged while both ran leave the new index and memory tier
// too, uncounted as corruption, so the bytes used stay true.
func TestAdoptForgetsWhatTheOldProcessRemoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := newSource()
	body := randBytes(t, 40_000)
	src.put("t1/a.m4s", body)
	old := newCache(t, dir, src, 0)
	h, err := old.Get(context.Background(), "t1/a.m4s")
	if err != nil {
		t.Fatal(err)
	}
	read(t, h)
	poll.Until(t, 10*time.Second, "the fill to finish", func() bool { return old.Stats().FillsInFlight == 0 })

	upgraded := newCache(t, dir, deadSource{}, 1<<20)
	if _, ok := upgraded.Lookup("t1/a.m4s"); !ok {
		t.Fatal("the object is not indexed at start-up")
	}
	// The new process serves it, into its memory tier too.
	poll.Until(t, 10*time.Second, "a memory-tier hit in the new process", func() bool {
		h, err := upgraded.Get(context.Background(), "t1/a.m4s")
		if err != nil {
			t.Fatal(err)
		}
		read(t, h)
		h, ok := upgraded.Lookup("t1/a.m4s")
		return ok && h.Tier == TierMemory
	})
	old.Purge("t1/") // the old process purges while it drains
	old.Close()

	if _, err := upgraded.Adopt(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := upgraded.Lookup("t1/a.m4s"); ok {
		t.Error("the purged object is still a hit after Adopt")
	}
	s := upgraded.Stats()
	if s.DiskObjects != 0 || s.DiskUsed != 0 || s.Corrupt != 0 {
		t.Errorf("after Adopt: %d objects, %d bytes, %d corrupt; want 0, 0, 0", s.DiskObjects, s.DiskUsed, s.Corrupt)
	}
}

// TestAdoptStopsWhenCancelled: a shutdown does not wait for the walk.
func TestAdoptStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := newSource()
	src.put("t1/a.m4s", randBytes(t, 1000))
	old := newCache(t, dir, src, 0)
	upgraded := newCache(t, dir, deadSource{}, 0)
	h, err := old.Get(context.Background(), "t1/a.m4s") // written after upgraded's index
	if err != nil {
		t.Fatal(err)
	}
	read(t, h)
	poll.Until(t, 10*time.Second, "the fill to finish", func() bool { return old.Stats().FillsInFlight == 0 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := upgraded.Adopt(ctx); !errors.Is(err, context.Canceled) || n != 0 {
		t.Errorf("Adopt with a cancelled context = %d, %v; want 0, context.Canceled", n, err)
	}
	if _, ok := upgraded.Lookup("t1/a.m4s"); ok {
		t.Error("a cancelled Adopt indexed an object")
	}
}
