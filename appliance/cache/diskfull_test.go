package cache

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// mountTmpfs mounts a tmpfs of size on a new directory, unmounted when the
// test ends unless the returned function did it first; it skips the test
// where mounting is not allowed.
func mountTmpfs(t *testing.T, size string) (dir string, unmount func()) {
	t.Helper()
	dir = t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s): run the test as root to check a full or lost disk", err, bytes.TrimSpace(out))
	}
	var once sync.Once
	unmount = func() {
		once.Do(func() {
			// Lazily: the cache may hold files open.
			if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", dir, err, out)
			}
		})
	}
	t.Cleanup(unmount)
	return dir, unmount
}

// getAll reads key through c and waits until its fill, if any, is done.
func getAll(t *testing.T, c *Cache, key string) []byte {
	t.Helper()
	h, err := c.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	b := read(t, h)
	poll.Until(t, 20*time.Second, "the fill to finish", func() bool { return c.Stats().FillsInFlight == 0 })
	return b
}

// TestFullDiskEvictsAndServes fills a cache whose budget (64 MiB) is far
// more than its file system holds (an 8 MiB tmpfs) to the brim: every
// client gets the right body, whether the fill spools in memory or in the
// disk file itself; refused writes count as disk write errors and evict to
// make room, so the newest objects are still cached; an object larger
// than the whole file system is served and not cached, and no temporary
// file is left behind.
func TestFullDiskEvictsAndServes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		spool int64
	}{
		{"spooled in memory", 64 << 20},
		{"spooled in the disk file", 256 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := mountTmpfs(t, "8m")
			src := newSource()
			cfg := DefaultConfig()
			cfg.Dir, cfg.DiskBytes, cfg.MaxSpoolBytes = dir, 64<<20, tt.spool
			c, err := New(cfg, src, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			const n = 20
			bodies := make([][]byte, n)
			for i := range bodies {
				key := fmt.Sprintf("t1/seg-%02d.m4s", i)
				bodies[i] = randBytes(t, 1<<20)
				src.put(key, bodies[i])
				if got := getAll(t, c, key); !bytes.Equal(got, bodies[i]) {
					t.Fatalf("%s: got %d bytes, not the %d the upstream sent", key, len(got), len(bodies[i]))
				}
			}
			s := c.Stats()
			if s.DiskWriteErrors == 0 || s.DiskEvictions == 0 {
				t.Errorf("%d write errors, %d evictions: want both counted", s.DiskWriteErrors, s.DiskEvictions)
			}
			if s.DiskObjects < 3 || s.DiskUsed > 8<<20 {
				t.Errorf("%d objects, %d bytes held: want several, within the 8 MiB file system", s.DiskObjects, s.DiskUsed)
			}
			t.Logf("%d write errors, %d evictions, %d objects, %d bytes held", s.DiskWriteErrors, s.DiskEvictions, s.DiskObjects, s.DiskUsed)
			last := fmt.Sprintf("t1/seg-%02d.m4s", n-1)
			if tt.spool >= 10<<20 {
				// Too large for the file system: it must not empty the cache
				// trying to make room.
				big := randBytes(t, 10<<20)
				src.put("t1/big.m4s", big)
				errs := c.Stats().DiskWriteErrors
				if got := getAll(t, c, "t1/big.m4s"); !bytes.Equal(got, big) {
					t.Fatalf("big: got %d bytes, not the %d the upstream sent", len(got), len(big))
				}
				if c.Has("t1/big.m4s") || c.Stats().DiskWriteErrors == errs {
					t.Errorf("an object larger than the file system: cached %v, write errors %d → %d", c.Has("t1/big.m4s"), errs, c.Stats().DiskWriteErrors)
				}
			}
			if h, ok := c.Lookup(last); !ok || !bytes.Equal(read(t, h), bodies[n-1]) {
				t.Errorf("%s, the newest object, is not a hit with its bytes", last)
			}
			if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
				t.Errorf("temporary files left: %d", len(tmp))
			}
		})
	}
}
