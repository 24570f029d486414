package cache

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// TestClassPlacementMovesOnlyTheShare: each class places its objects by
// rendezvous hashing over its own directories, so a third directory added
// to the disk class takes about a third of that class's keys, from both
// others alike, and moves nothing in the flash class.
func TestClassPlacementMovesOnlyTheShare(t *testing.T) {
	t.Parallel()
	c := &Cache{}
	for _, dc := range []DirConfig{{Class: ClassFlash}, {Class: ClassFlash}, {Class: ClassDisk}, {Class: ClassDisk}, {Class: ClassDisk}} {
		dc.Path, dc.Bytes = t.TempDir(), 1<<30
		d, err := openDisk(dc, testDiskOptions())
		if err != nil {
			t.Fatal(err)
		}
		c.disks = append(c.disks, d)
		c.classes[d.class] = append(c.classes[d.class], d)
	}
	const n = 30000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("t%d/1080p/seg-%05d.m4s", i%113, i)
	}
	placeAll := func() (flash, other map[string]*disk) {
		flash, other = map[string]*disk{}, map[string]*disk{}
		for _, k := range keys {
			flash[k], other[k] = c.place(flashIdx, k), c.place(diskIdx, k)
		}
		return flash, other
	}
	third := c.classes[diskIdx][2]
	third.failed.Store(true) // not there yet
	flashBefore, diskBefore := placeAll()
	third.failed.Store(false) // added
	flashAfter, diskAfter := placeAll()
	moved := 0
	for _, k := range keys {
		if flashAfter[k] != flashBefore[k] {
			t.Fatalf("%s moved within the flash class", k)
		}
		if diskAfter[k] != diskBefore[k] {
			if diskAfter[k] != third {
				t.Fatalf("%s moved between the two old disk-class directories", k)
			}
			moved++
		}
	}
	if got, want := float64(moved)/n, 1.0/3; math.Abs(got-want) > 0.02 {
		t.Errorf("adding a third disk-class directory moved %.3f of the keys, want %.3f", got, want)
	}
}

// tieredCache returns a cache over one flash directory of flashBytes and
// the disk-class directories given, with the memory tier off (every hit
// is a disk hit) and Run moving objects at moveRate until the test ends.
func tieredCache(t *testing.T, src Source, flashBytes int64, moveRate int64, diskDirs ...string) *Cache {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DiskBytes, cfg.ScrubRate, cfg.MoveRate = 64<<20, 0, moveRate
	cfg.Dirs = []DirConfig{{Path: t.TempDir(), Bytes: flashBytes, Class: ClassFlash}}
	for _, d := range diskDirs {
		cfg.Dirs = append(cfg.Dirs, DirConfig{Path: d, Class: ClassDisk})
	}
	c, err := New(cfg, src, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	poll.Until(t, 10*time.Second, "the movers", c.moving.Load)
	return c
}

// where names the class holding key: "flash", "disk", "both" or "none".
func where(c *Cache, key string) string {
	var on [2]bool
	for _, d := range c.disks {
		if !d.failed.Load() && d.has(key) {
			on[d.class] = true
		}
	}
	switch {
	case on[flashIdx] && on[diskIdx]:
		return "both"
	case on[flashIdx]:
		return "flash"
	case on[diskIdx]:
		return "disk"
	}
	return "none"
}

// TestPromotionAndDemotion: while flash has room, new objects go there;
// once it is full, objects requested once go to the disk class. A
// disk-class object requested again is promoted to flash, and the flash
// object it pushes out is demoted to the disk class: both moved, neither
// fetched again, every body intact.
func TestPromotionAndDemotion(t *testing.T) {
	t.Parallel()
	src := newSource()
	const size = 100_000
	c := tieredCache(t, src, 4*size+size/2, 64<<20, t.TempDir()) // flash holds four
	bodies := map[string][]byte{}
	key := func(i int) string { return fmt.Sprintf("t1/seg-%02d.m4s", i) }
	for i := range 10 {
		bodies[key(i)] = randBytes(t, size)
		src.put(key(i), bodies[key(i)])
		getAll(t, c, key(i))
		want := "flash"
		if i >= 4 {
			want = "disk"
		}
		if got := where(c, key(i)); got != want {
			t.Fatalf("%s, filled with flash %s: on %s, want %s", key(i), map[bool]string{true: "full", false: "not full"}[i >= 4], got, want)
		}
	}

	hot := key(7)
	if h, ok := c.Lookup(hot); !ok || h.Tier != TierDisk {
		t.Fatalf("%s: not a disk hit", hot)
	} else {
		h.Release()
	}
	poll.Until(t, 20*time.Second, "the promotion and the demotion", func() bool {
		s := c.Stats()
		return s.Promotions == 1 && s.Demotions == 1
	})
	if got := where(c, hot); got != "flash" {
		t.Errorf("promoted %s is on %s, want flash", hot, got)
	}
	onFlash, onDisk := 0, 0
	for k := range bodies {
		switch where(c, k) {
		case "flash":
			onFlash++
		case "disk":
			onDisk++
		default:
			t.Errorf("%s is on %s", k, where(c, k))
		}
	}
	if onFlash != 4 || onDisk != 6 {
		t.Errorf("flash holds %d objects and the disk class %d, want 4 and 6 (one demoted for the promoted one)", onFlash, onDisk)
	}
	for k, want := range bodies {
		if got := getAll(t, c, k); !bytes.Equal(got, want) {
			t.Fatalf("%s: wrong body after the moves", k)
		}
	}
	if got := src.fetches.Load(); got != 10 {
		t.Errorf("upstream fetches: %d, want 10 (moves copy, they do not fetch again)", got)
	}
	s := c.Stats()
	if s.Dirs[0].UsedBytes > s.Dirs[0].CapacityBytes || s.Dirs[0].Class != ClassFlash || s.Dirs[1].Class != ClassDisk {
		t.Errorf("flash directory: %+v", s.Dirs[0])
	}
}

// TestMoveToFailingDirectory takes the target directory away while a
// move copies into it (moves are slowed to 20 kB/s so that the copy is
// seen under way): a promotion leaves the object on the disk class, a
// demotion goes to the disk class's other directory; only the objects of
// the lost directory are fetched again and every body is intact.
func TestMoveToFailingDirectory(t *testing.T) {
	t.Parallel()
	const size = 40_000
	for _, tt := range []struct {
		name string
		// lost picks the directory to take away while the move copies
		// into it: flash, or the disk-class one cold is demoted to.
		lost    func(c *Cache, cold string) *disk
		hot     string // where each key ends
		cold    string
		refetch int64
	}{
		{"promotion target", func(c *Cache, _ string) *disk { return c.classes[flashIdx][0] }, "disk", "none", 1},
		{"demotion target", func(c *Cache, cold string) *disk { return c.place(diskIdx, cold) }, "flash", "disk", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := newSource()
			c := tieredCache(t, src, size+size/2, 20_000, t.TempDir(), t.TempDir()) // flash holds one
			cold, hot := "t1/seg-00.m4s", "t1/seg-01.m4s"
			bodies := map[string][]byte{}
			for _, k := range []string{cold, hot} {
				bodies[k] = randBytes(t, size)
				src.put(k, bodies[k])
				getAll(t, c, k)
			}
			if where(c, cold) != "flash" || where(c, hot) != "disk" {
				t.Fatalf("cold on %s, hot on %s: want flash and disk", where(c, cold), where(c, hot))
			}
			lost := tt.lost(c, cold)
			if h, ok := c.Lookup(hot); ok {
				h.Release()
			}
			poll.Until(t, 20*time.Second, "a move copying into "+lost.dir, func() bool {
				tmp, _ := os.ReadDir(lost.tmpDir)
				return len(tmp) > 0
			})
			if err := os.RemoveAll(lost.dir); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 20*time.Second, lost.dir+" failed and the moves settled", func() bool {
				return lost.failed.Load() && len(c.moves) == 0 && !promoting(c, hot) &&
					where(c, hot) == tt.hot && where(c, cold) == tt.cold
			})
			fetches := src.fetches.Load()
			for k, want := range bodies {
				if got := getAll(t, c, k); !bytes.Equal(got, want) {
					t.Fatalf("%s: wrong body", k)
				}
			}
			if got := src.fetches.Load() - fetches; got != tt.refetch {
				t.Errorf("%d fetches after the failure, want %d (the lost directory's objects)", got, tt.refetch)
			}
			if got, want := c.Stats().Demotions, int64(1-tt.refetch); got != want {
				t.Errorf("demotions: %d, want %d", got, want)
			}
		})
	}
}

// promoting reports whether key is queued or being moved to flash.
func promoting(c *Cache, key string) bool {
	for _, d := range c.disks {
		d.mu.Lock()
		e := d.index[key]
		d.mu.Unlock()
		if e != nil && e.promoting.Load() {
			return true
		}
	}
	return false
}

// TestPurgeDuringMove purges an object while its promotion copies it
// (slowed to 20 kB/s): the copy is not indexed, so the purged object is
// not served again from either class but fetched anew.
func TestPurgeDuringMove(t *testing.T) {
	t.Parallel()
	const size = 40_000
	src := newSource()
	c := tieredCache(t, src, size+size/2, 20_000, t.TempDir()) // flash holds one
	cold, hot := "t1/seg-00.m4s", "t2/seg-00.m4s"
	for _, k := range []string{cold, hot} {
		src.put(k, randBytes(t, size))
		getAll(t, c, k)
	}
	if h, ok := c.Lookup(hot); ok {
		h.Release()
	}
	flash := c.classes[flashIdx][0]
	poll.Until(t, 20*time.Second, "the promotion copying", func() bool {
		tmp, _ := os.ReadDir(flash.tmpDir)
		return len(tmp) > 0
	})
	if n := c.Purge("t2/"); n != 1 {
		t.Fatalf("purge removed %d objects, want 1", n)
	}
	// The move ends by removing its temporary file, indexed or not.
	poll.Until(t, 20*time.Second, "the move to end", func() bool {
		tmp, _ := os.ReadDir(flash.tmpDir)
		return len(tmp) == 0
	})
	if got := where(c, hot); got != "none" || c.Stats().Promotions != 0 {
		t.Errorf("purged %s is on %s after its move, with %d promotions; want it nowhere", hot, got, c.Stats().Promotions)
	}
	fetches := src.fetches.Load()
	src.put(hot, randBytes(t, size)) // published again, other bytes
	if got := getAll(t, c, hot); !bytes.Equal(got, src.objects[hot]) || src.fetches.Load() != fetches+1 {
		t.Errorf("after the purge: %d fetches, body right %v; want it fetched again", src.fetches.Load()-fetches, bytes.Equal(got, src.objects[hot]))
	}
}

// TestDemotedVictimLeavesTheBudgetOnce: a flash victim waiting for its
// demotion is neither offered to the demote hook again nor evicted to
// make room, even when a new pin set puts it back in the eviction order
// meanwhile, so that its bytes leave the budget once and come back to it
// once the moves end.
func TestDemotedVictimLeavesTheBudgetOnce(t *testing.T) {
	t.Parallel()
	d, offered, add, first := demoting(t)
	d.setPinned(map[string]bool{first.key: true})
	d.setPinned(nil)    // back in the eviction order while still being moved
	d.makeRoom(1 << 20) // the file system refused a write as full
	for i := 100; i < 120; i++ {
		add(i)
	}
	if offered[first] != 1 {
		t.Errorf("the victim being demoted was offered %d times, want once", offered[first])
	}
	for e := range offered {
		d.release(e, true) // the moves end
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var indexed int64
	for _, e := range d.index {
		indexed += e.fileSize
	}
	if d.transit != 0 || d.used != indexed || d.used > d.max {
		t.Errorf("after the moves: %d bytes used, %d in transit, %d indexed, budget %d; want nothing in transit, used = indexed, within budget",
			d.used, d.transit, indexed, d.max)
	}
}

// TestPinnedPromotionsKeepFlashWithinBudget: objects the fill manifest
// pins cannot be evicted, so a popular pinned object is promoted to
// flash only while flash can free the room from objects not pinned: it
// displaces an unpinned one, and once flash holds only pinned objects
// the next stays on the disk class instead of taking flash over its
// budget.
func TestPinnedPromotionsKeepFlashWithinBudget(t *testing.T) {
	t.Parallel()
	const size = 100_000
	src := newSource()
	c := tieredCache(t, src, 2*size+size/2, 64<<20, t.TempDir()) // flash holds two
	keys := []string{"t1/seg-a.m4s", "t1/seg-x.m4s", "t1/seg-c.m4s", "t1/seg-d.m4s"}
	for i, k := range keys {
		src.put(k, randBytes(t, size))
		getAll(t, c, k)
		if want := map[bool]string{true: "flash", false: "disk"}[i < 2]; where(c, k) != want {
			t.Fatalf("%s filled on %s, want %s", k, where(c, k), want)
		}
	}
	c.Pin(map[string]bool{keys[0]: true, keys[2]: true, keys[3]: true}) // all but x
	for _, k := range keys[2:] {
		for range 3 {
			if h, ok := c.Lookup(k); ok {
				h.Release()
			}
		}
		poll.Until(t, 20*time.Second, "the moves of "+k+" to settle", func() bool {
			flash := c.classes[flashIdx][0]
			flash.mu.Lock()
			demoting := flash.transit != 0 // from when a promotion queues it until it ends
			flash.mu.Unlock()
			return !promoting(c, k) && len(c.moves) == 0 && !demoting
		})
	}
	s := c.Stats()
	if got := [4]string{where(c, keys[0]), where(c, keys[1]), where(c, keys[2]), where(c, keys[3])}; got != [4]string{"flash", "disk", "flash", "disk"} {
		t.Errorf("a, x, c, d on %v: want c promoted in place of x, d left on the disk class", got)
	}
	if f := s.Dirs[0]; f.UsedBytes > f.CapacityBytes || s.Promotions != 1 || s.Demotions != 1 {
		t.Errorf("flash %d of %d bytes used after %d promotions and %d demotions; want within budget, one each", f.UsedBytes, f.CapacityBytes, s.Promotions, s.Demotions)
	}
}
