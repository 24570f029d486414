package fill

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/filelist"
)

// TestFillsWithinCapacity: a manifest planning more than the cache holds
// (six files of 200 kB) is filled, and pinned, only as far as it fits, in
// its order; when a directory fails, what fits shrinks with the capacity
// left, and only the files of the fitting part that were lost are
// fetched again.
func TestFillsWithinCapacity(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	m := w.plan(t, 1, "02:00-14:00", "t1", "t2")
	clk := &clock{t: inWindow}
	ctx := context.Background()

	// One directory of 700 kB: t1's three files fit, t2's do not.
	ccfg := cache.DefaultConfig()
	ccfg.Dir, ccfg.DiskBytes = t.TempDir(), 700_000
	e, c := w.applianceWith(t, ccfg, clk, 1e9)
	e.pass(ctx)
	if s := e.Status(); s.PresentFiles != 3 || s.FilledBytes != 600_000 || s.OverCapacityBytes != 600_000 || w.gets.Load() != 5 {
		t.Errorf("700 kB for 1.2 MB planned: %+v, %d origin GETs; want the 2 lists and t1's 3 files filled, and 600 kB over capacity", s, w.gets.Load())
	}
	for _, k := range []string{"t1/720p/seg-00001.m4s", "t1/720p/seg-00003.m4s"} {
		if !c.Has(k) {
			t.Errorf("%s not filled", k)
		}
	}

	// Two directories of 700 kB: all six fit; then one fails.
	w.gets.Store(0)
	dirs := []string{t.TempDir(), t.TempDir()}
	ccfg = cache.DefaultConfig()
	ccfg.DiskBytes = 700_000
	ccfg.Dirs = []cache.DirConfig{{Path: dirs[0]}, {Path: dirs[1]}}
	e, c = w.applianceWith(t, ccfg, clk, 1e9)
	e.pass(ctx)
	if s := e.Status(); s.PresentFiles != 6 || s.OverCapacityBytes != 0 || w.gets.Load() != 2+6 {
		t.Fatalf("1.4 MB for 1.2 MB planned: %+v, %d origin GETs", s, w.gets.Load())
	}
	// Take away a directory that holds objects: hashing may place all
	// six on one (the pins keep them there over its budget).
	lost := dirs[1]
	if c.Stats().Dirs[1].Objects == 0 {
		lost = dirs[0]
	}
	if err := os.RemoveAll(lost); err != nil {
		t.Fatal(err)
	}
	var lostT1, lostLists int64
	for k := range w.files {
		if h, ok := c.Lookup(k); ok { // finds the directory gone
			h.Release()
		} else if k[:2] == "t1" {
			lostT1++
		}
	}
	for _, mt := range m.Titles {
		if h, ok := c.Lookup(filelist.Path(mt.ID, mt.FilesDigest)); ok {
			h.Release()
		} else {
			lostLists++
		}
	}
	if c.Capacity() != 700_000 {
		t.Fatalf("capacity %d after losing a directory, want 700000", c.Capacity())
	}
	w.gets.Store(0)
	e.pass(ctx)
	s := e.Status()
	if s.OverCapacityBytes != 600_000 || w.gets.Load() != lostT1+lostLists {
		t.Errorf("after losing a directory: %+v, %d origin GETs; want 600 kB over capacity and the %d lost lists and t1's %d lost files fetched again",
			s, w.gets.Load(), lostLists, lostT1)
	}
	if st := c.Stats(); st.DiskUsed > st.DiskCapacity {
		t.Errorf("the healthy directory holds %d bytes, over its budget of %d", st.DiskUsed, st.DiskCapacity)
	}
}

// TestListsCountAgainstCapacity: a title's list is pinned with its files
// and its bytes count against the capacity before theirs: with room for
// three files but not three files and their list, the last file is
// neither pinned nor filled.
func TestListsCountAgainstCapacity(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mt := w.plan(t, 1, "00:00-23:59", "t1").Titles[0]
	e, c := w.smallAppliance(t, 600_100)
	pins := logPins(e, c)
	e.pass(context.Background())
	if s := e.Status(); s.PresentFiles != 2 || s.OverCapacityBytes != 200_000 {
		t.Errorf("%+v; want 2 files filled and 200 kB over capacity", s)
	}
	want := []string{filelist.Path("t1", mt.FilesDigest), "t1/720p/seg-00001.m4s", "t1/720p/seg-00002.m4s"}
	slices.Sort(want)
	if got := pins.pinned(); !slices.Equal(got, want) {
		t.Errorf("pinned %v, want %v", got, want)
	}
}
