package cache

import (
	"context"
	"io"
	"testing"
)

// TestPeekIsNoTraffic: Peek reads a stored object without counting a hit
// or copying it into the memory tier; Lookup, the traffic path, counts
// one.
func TestPeekIsNoTraffic(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Dir, cfg.DiskBytes, cfg.MemBytes = t.TempDir(), 1<<20, 1<<20
	c, err := New(cfg, newSource(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := randBytes(t, 10_000)
	if _, err := c.Store(context.Background(), "t1/_files/x", fetched(body), sum(body)); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Peek("t1/_files/missing"); ok {
		t.Error("Peek found an object never stored")
	}
	for range 3 {
		h, ok := c.Peek("t1/_files/x")
		if !ok {
			t.Fatal("Peek missed a stored object")
		}
		r, err := h.Stream(context.Background(), 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.(io.Closer).Close()
		if err != nil || string(got) != string(body) {
			t.Fatalf("Peek read %d bytes (%v), want the %d stored", len(got), err, len(body))
		}
	}
	c.mem.c.Wait() // the memory tier's admissions settle
	if s := c.Stats(); s.DiskHits != 0 || s.MemHits != 0 || s.MemUsed != 0 {
		t.Errorf("after 3 peeks: %d disk hits, %d memory hits, %d bytes in memory; want none", s.DiskHits, s.MemHits, s.MemUsed)
	}
	h, ok := c.Lookup("t1/_files/x")
	if !ok {
		t.Fatal("Lookup missed")
	}
	h.Release()
	if s := c.Stats(); s.DiskHits != 1 {
		t.Errorf("after a lookup: %d disk hits, want 1", s.DiskHits)
	}
}
