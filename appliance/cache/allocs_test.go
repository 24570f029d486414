//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates.

package cache

import (
	"context"
	"io"
	"testing"
)

// TestDiskHitAllocs: a disk hit served from its file (lookup, placement
// over several directories, the VerifyAge check, open and the file range
// handed to the server) allocates nothing.
func TestDiskHitAllocs(t *testing.T) {
	src := newSource()
	cfg := DefaultConfig()
	cfg.DiskBytes = 1 << 30
	cfg.Dirs = []DirConfig{{Path: t.TempDir()}, {Path: t.TempDir()}, {Path: t.TempDir()}}
	c, err := New(cfg, src, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const key = "t1/720p/seg-00001.m4s"
	src.put(key, randBytes(t, 1_500_000))
	getAll(t, c, key)
	hit := func() {
		h, ok := c.Lookup(key)
		if !ok || h.Tier != TierDisk {
			t.Fatal("not a disk hit")
		}
		r, _ := h.Stream(context.Background(), 0, h.Meta.Size)
		r.(io.Closer).Close()
	}
	hit()
	if n := testing.AllocsPerRun(200, hit); n != 0 {
		t.Errorf("a disk hit allocates %v times, want 0", n)
	}
}
