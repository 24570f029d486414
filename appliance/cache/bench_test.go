package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// BenchmarkDiskIndexLookup measures a disk-tier index lookup (map, lock,
// eviction bookkeeping) in an index of 100k objects.
func BenchmarkDiskIndexLookup(b *testing.B) {
	d, err := openDisk(DirConfig{Path: b.TempDir(), Bytes: 1 << 40}, testDiskOptions())
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("t%d/720p/seg-%05d.m4s", i%1000, i)
		d.insertLocked(&diskEntry{key: keys[i], fileSize: 1_500_000})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := d.lookup(keys[i%len(keys)]); !ok {
			b.Fatal("missing")
		}
		i++
	}
}

// BenchmarkDiskHit measures a disk-tier hit end to end in the cache:
// lookup, open, and hand-off of the file section.
func BenchmarkDiskHit(b *testing.B) {
	src := newSource()
	src.put("t1/seg.m4s", randBytes(b, 1_500_000))
	cfg := DefaultConfig()
	cfg.Dir, cfg.DiskBytes = b.TempDir(), 1<<30
	c, err := New(cfg, src, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	h, _ := c.Get(context.Background(), "t1/seg.m4s")
	h.Release()
	poll.Until(b, 10*time.Second, "the fill to finish", func() bool { return c.Stats().FillsInFlight == 0 })
	b.ReportAllocs()
	for b.Loop() {
		h, ok := c.Lookup("t1/seg.m4s")
		if !ok || h.Tier != TierDisk {
			b.Fatal("not a disk hit")
		}
		r, _ := h.Stream(context.Background(), 0, h.Meta.Size)
		r.(interface{ Close() error }).Close()
	}
}

// BenchmarkRebuild measures start-up: rebuilding the index from 2,000
// object files.
func BenchmarkRebuild(b *testing.B) {
	dir := b.TempDir()
	src := newSource()
	cfg := DefaultConfig()
	cfg.Dir, cfg.DiskBytes = dir, 1<<30
	c, err := New(cfg, src, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 2000 {
		k := fmt.Sprintf("t1/seg-%05d.m4s", i)
		src.put(k, randBytes(b, 1000))
		h, err := c.Get(context.Background(), k)
		if err != nil {
			b.Fatal(err)
		}
		h.Release()
	}
	poll.Until(b, 10*time.Second, "the fills to finish", func() bool { return c.Stats().FillsInFlight == 0 })
	c.Close()
	b.ReportAllocs()
	for b.Loop() {
		d, err := openDisk(DirConfig{Path: dir, Bytes: 1 << 30}, testDiskOptions())
		if err != nil || len(d.index) != 2000 {
			b.Fatalf("rebuild: %v, %d objects", err, len(d.index))
		}
	}
}

// testDiskOptions are a directory's options as New sets them by default.
func testDiskOptions() diskOptions {
	return diskOptions{verifyAge: int64(DefaultConfig().VerifyAge), now: time.Now, log: quietLog()}
}
