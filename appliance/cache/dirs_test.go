package cache

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPlacementMovesOnlyTheShare: with rendezvous hashing each directory
// holds a share of the keys proportional to its budget, and a directory
// added (or lost) moves only the keys it wins (or won).
func TestPlacementMovesOnlyTheShare(t *testing.T) {
	t.Parallel()
	c := &Cache{}
	budgets := []int64{1 << 30, 1 << 30, 2 << 30, 1 << 30}
	for _, b := range budgets {
		d, err := openDisk(DirConfig{Path: t.TempDir(), Bytes: b}, testDiskOptions())
		if err != nil {
			t.Fatal(err)
		}
		c.disks = append(c.disks, d)
	}
	c.classes[flashIdx] = c.disks
	const n = 20000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("t%d/720p/seg-%05d.m4s", i%97, i)
	}
	placeAll := func() map[string]*disk {
		m := make(map[string]*disk, n)
		for _, k := range keys {
			m[k] = c.place(flashIdx, k)
		}
		return m
	}
	newest := c.disks[3]
	newest.failed.Store(true) // not there yet
	before := placeAll()
	newest.failed.Store(false) // added
	after := placeAll()

	share := map[*disk]int{}
	for _, k := range keys {
		share[after[k]]++
		if after[k] != before[k] && after[k] != newest {
			t.Fatalf("%s moved between two old directories", k)
		}
	}
	var total int64
	for _, b := range budgets {
		total += b
	}
	for i, d := range c.disks {
		got, want := float64(share[d])/n, float64(budgets[i])/float64(total)
		if math.Abs(got-want) > 0.02 {
			t.Errorf("directory %d (budget %d): holds %.3f of the keys, want %.3f", i, budgets[i], got, want)
		}
	}
}

// TestFailingDirectoryIsTakenOut spreads objects over three directories,
// then takes one away under the running cache (removed, or its tmpfs
// unmounted): the first read that finds it gone takes it out of service,
// its objects are fetched again onto the other two, theirs stay hits, and
// every client gets the right bytes.
func TestFailingDirectoryIsTakenOut(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		lose func(t *testing.T) (dir string, lose func())
	}{
		{"directory removed", func(t *testing.T) (string, func()) {
			dir := t.TempDir()
			return dir, func() {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"tmpfs unmounted", func(t *testing.T) (string, func()) { return mountTmpfs(t, "64m") }},
		{"ext4 shut down: EIO", mountExt4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lost, lose := tt.lose(t)
			dirs := []string{t.TempDir(), lost, t.TempDir()}
			src := newSource()
			cfg := DefaultConfig()
			cfg.DiskBytes = 64 << 20
			for _, d := range dirs {
				cfg.Dirs = append(cfg.Dirs, DirConfig{Path: d})
			}
			c, err := New(cfg, src, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			checkLosingDirectory(t, c, src, dirs, lose)
		})
	}
}

func checkLosingDirectory(t *testing.T, c *Cache, src *source, dirs []string, lose func()) {
	const n = 60
	bodies := map[string][]byte{}
	for i := range n {
		key := fmt.Sprintf("t1/seg-%02d.m4s", i)
		bodies[key] = randBytes(t, 10_000+i)
		src.put(key, bodies[key])
		getAll(t, c, key)
	}
	onLost := 0
	for key := range bodies {
		if c.disks[1].has(key) {
			onLost++
		}
	}
	for i, ds := range c.Stats().Dirs {
		if ds.Objects == 0 {
			t.Fatalf("directory %d holds nothing: placement does not spread", i)
		}
	}

	lose()
	for key, body := range bodies {
		if got := getAll(t, c, key); !bytes.Equal(got, body) {
			t.Fatalf("%s: got %d bytes, not the upstream's %d", key, len(got), len(body))
		}
	}
	if got, want := src.fetches.Load(), int64(n+onLost); got != want {
		t.Errorf("upstream fetches: got %d, want %d (the %d objects of the lost directory again)", got, want, onLost)
	}
	s := c.Stats()
	for i, ds := range s.Dirs {
		if ds.Failed != (i == 1) {
			t.Errorf("directory %d: failed %v (%s)", i, ds.Failed, ds.Error)
		}
	}
	t.Logf("the lost directory failed with: %s", s.Dirs[1].Error)
	if got := c.FailedDirs(); len(got) != 1 || got[0] != dirs[1] {
		t.Errorf("failed directories: got %v, want [%s]", got, dirs[1])
	}
	if want := s.Dirs[0].CapacityBytes + s.Dirs[2].CapacityBytes; s.DiskObjects != n || s.DiskCapacity != want {
		t.Errorf("disk tier: %d objects in %d bytes of capacity, want %d in the two healthy directories' %d", s.DiskObjects, s.DiskCapacity, n, want)
	}
	for key := range bodies {
		if !c.disks[0].has(key) && !c.disks[2].has(key) {
			t.Errorf("%s is not on a healthy directory", key)
		}
	}
}

// mountExt4 mounts a small ext4 file system on a loop device, and returns
// its directory and a function that shuts the file system down
// (EXT4_IOC_SHUTDOWN): from then on every read and write in it fails
// with EIO, as on a dying disk. It skips the test where that cannot be
// set up.
func mountExt4(t *testing.T) (string, func()) {
	t.Helper()
	img, dir := filepath.Join(t.TempDir(), "disk.img"), t.TempDir()
	for _, cmd := range [][]string{{"truncate", "-s", "64M", img}, {"mkfs.ext4", "-q", img}, {"mount", "-o", "loop", img, dir}} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Skipf("cannot mount an ext4 image (%s: %v: %s): run the test as root with mkfs.ext4 to check a disk failing with EIO",
				cmd[0], err, bytes.TrimSpace(out))
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir, func() {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		const ext4IocShutdown, noLogFlush = 0x8004587d, 2 // _IOR('X', 125, __u32), EXT4_GOING_FLAGS_NOLOGFLUSH
		if err := unix.IoctlSetPointerInt(fd, ext4IocShutdown, noLogFlush); err != nil {
			t.Skipf("cannot shut the ext4 file system down: %v", err)
		}
	}
}
