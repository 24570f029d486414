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
// handed to the server) allocates nothing, also on the disk class of a
// cache with two, where each hit asks whether to promote the object.
func TestDiskHitAllocs(t *testing.T) {
	for _, tt := range []struct {
		name    string
		classes []Class
	}{
		{"one class", []Class{"", "", ""}},
		{"flash and disk", []Class{ClassFlash, ClassDisk, ClassDisk}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource()
			cfg := DefaultConfig()
			cfg.DiskBytes = 1 << 30
			for _, cl := range tt.classes {
				cfg.Dirs = append(cfg.Dirs, DirConfig{Path: t.TempDir(), Class: cl})
			}
			const key = "t1/720p/seg-00001.m4s"
			if tt.classes[0] == ClassFlash {
				// Flash has no room left for the object once another
				// fills it, so the object goes to the disk class; its
				// hits then ask flash, whose last victim is more popular
				// than they are.
				cfg.Dirs[0].Bytes = 2 << 20
			}
			c, err := New(cfg, src, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tt.classes[0] == ClassFlash {
				src.put("t1/720p/seg-00000.m4s", randBytes(t, 1_000_000))
				getAll(t, c, "t1/720p/seg-00000.m4s")
				c.moving.Store(true) // as Run does
				flash := c.classes[flashIdx][0]
				flash.lastVictim = "t1/720p/popular.m4s"
				for range 255 {
					c.sketch.Touch(flash.lastVictim)
				}
			}
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
			if tt.classes[0] == ClassFlash && (where(c, key) != "disk" || len(c.moves) != 0) {
				t.Errorf("the object is on %s with %d moves queued: want it left on the disk class", where(c, key), len(c.moves))
			}
		})
	}
}
