package cache

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// testClock is a clock the test moves.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// flipBytes corrupts the body of key's object file in dir, as bit rot
// would: same length, valid footer, wrong bytes.
func flipBytes(t *testing.T, dir, key string, off int64) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "objects", objectName(key)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 16)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestBitRotIsNeverServed corrupts an object file after the cache wrote
// (and so verified) it. The background scrub finds it, or a read after
// VerifyAge does; either way the cache drops it, the client gets the
// upstream's bytes from a new fill, and the new copy is a hit.
func TestBitRotIsNeverServed(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		scrub bool
	}{
		{"found by the scrub", true},
		{"found on read after VerifyAge", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, clock, src := t.TempDir(), newTestClock(), newSource()
			cfg := DefaultConfig()
			cfg.Dir, cfg.DiskBytes, cfg.Now, cfg.VerifyAge = dir, 64<<20, clock.now, time.Hour
			cfg.ScrubRate, cfg.ScrubEvery = 0, 10*time.Millisecond
			if tt.scrub {
				cfg.ScrubRate = 256 << 20
			}
			c, err := New(cfg, src, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			const key = "t1/720p/seg-00001.m4s"
			body := randBytes(t, 3<<20)
			src.put(key, body)
			getAll(t, c, key)
			flipBytes(t, dir, key, 2<<20)
			clock.advance(time.Second) // after the write's verification

			if tt.scrub {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- c.Run(ctx) }()
				poll.Until(t, 20*time.Second, "the scrub to find the corrupt object", func() bool { return c.Stats().ScrubCorrupt == 1 })
				cancel()
				<-done
				if c.Has(key) {
					t.Fatal("the corrupt object is still indexed")
				}
			} else {
				clock.advance(time.Hour)
			}
			if got := getAll(t, c, key); !bytes.Equal(got, body) {
				t.Fatalf("got %d bytes that are not the upstream's", len(got))
			}
			if got, want := src.fetches.Load(), int64(2); got != want {
				t.Errorf("upstream fetches: got %d, want %d (the corrupt object fetched again)", got, want)
			}
			h, ok := c.Lookup(key)
			if !ok || h.Tier != TierDisk || !bytes.Equal(read(t, h), body) {
				t.Errorf("the fetched-again object is not a disk hit with the upstream's bytes")
			}
			if s := c.Stats(); s.Corrupt != 1 {
				t.Errorf("corrupt objects: got %d, want 1", s.Corrupt)
			}
		})
	}
}
