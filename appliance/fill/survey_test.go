package fill

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/filelist"
)

// TestChangedDigestListUnavailable: a planned title's files change (a new
// digest) while neither the origin nor the control plane can serve the
// new list: the files and list of the title as it was stay pinned, so
// pull-through traffic cannot evict a complete title; once the new list
// arrives, the pins switch to it and the files only the old list had are
// unpinned.
func TestChangedDigestListUnavailable(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	old := w.plan(t, 1, "00:00-23:59", "t1").Titles[0]
	e, c := w.smallAppliance(t, 1_000_000)
	pins := logPins(e, c)
	ctx := context.Background()
	e.pass(ctx)
	if s := e.Status(); s.PresentFiles != 3 {
		t.Fatalf("first list: %+v", s)
	}
	oldKeys := []string{filelist.Path("t1", old.FilesDigest), "t1/720p/seg-00001.m4s", "t1/720p/seg-00002.m4s", "t1/720p/seg-00003.m4s"}
	slices.Sort(oldKeys)

	// seg-00003 leaves the title, seg-00004 joins it; the new list is
	// nowhere yet.
	seg4 := make([]byte, 100_000)
	rand.Read(seg4)
	w.put(t, "t1/720p/seg-00004.m4s", seg4)
	files := slices.DeleteFunc(w.titleFiles("t1"), func(f fillcast.File) bool { return f.Path == "720p/seg-00003.m4s" })
	fresh := w.publish(t, "t1", files)
	newList := filepath.Join(w.root, filelist.Path("t1", fresh.FilesDigest))
	body, err := os.ReadFile(newList)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(newList); err != nil {
		t.Fatal(err)
	}
	m := w.manifest(t, 2, "00:00-23:59")
	m.Titles = []fillcast.ManifestTitle{fresh}
	w.cp.SetManifest("a1", m)
	e.pass(ctx)
	if s := e.Status(); s.MissingLists != 1 || s.Failures == 0 || s.ManifestVersion != 2 {
		t.Errorf("new list unavailable: %+v; want it missing and failed", s)
	}
	if got := pins.pinned(); !slices.Equal(got, oldKeys) {
		t.Errorf("new list unavailable: pinned %v, want the old list and its files %v", got, oldKeys)
	}
	if v, got := e.Complete(); v != 2 || len(got) != 0 {
		t.Errorf("Complete() = %d, %v; want t1 not complete while its list is missing", v, got)
	}
	// Pull-through traffic of twice the cache's size.
	pressure(t, c, 10, 200_000)
	for _, k := range oldKeys {
		if !c.Has(k) {
			t.Errorf("%s evicted while its title's new list is missing", k)
		}
	}

	// The new list arrives: the pins switch to it.
	w.put(t, filelist.Path("t1", fresh.FilesDigest), body)
	e.pass(ctx)
	want := []string{filelist.Path("t1", fresh.FilesDigest), "t1/720p/seg-00001.m4s", "t1/720p/seg-00002.m4s", "t1/720p/seg-00004.m4s"}
	slices.Sort(want)
	if got := pins.pinned(); !slices.Equal(got, want) {
		t.Errorf("new list stored: pinned %v, want %v (the old list and seg-00003 unpinned)", got, want)
	}
	if s := e.Status(); s.MissingLists != 0 || s.PresentFiles != 3 || !c.Has("t1/720p/seg-00004.m4s") {
		t.Errorf("new list stored: %+v; want its files filled", s)
	}
	if v, got := e.Complete(); v != 2 || fmt.Sprint(got) != "[t1]" {
		t.Errorf("Complete() = %d, %v", v, got)
	}
}

// pressure stores n objects of size bytes that no manifest plans, as
// pull-through traffic does.
func pressure(t *testing.T, c *cache.Cache, n, size int) {
	t.Helper()
	for i := range n {
		b := make([]byte, size)
		rand.Read(b)
		f := &cache.Fetched{Meta: cache.Meta{Size: int64(size)}, Body: io.NopCloser(bytes.NewReader(b))}
		if _, err := c.Store(context.Background(), fmt.Sprintf("other/%d.m4s", i), f, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// peekCount is the real cache, counting the reads of stored lists.
type peekCount struct {
	*cache.Cache
	n atomic.Int64
}

func (p *peekCount) Peek(key string) (cache.Hit, bool) {
	p.n.Add(1)
	return p.Cache.Peek(key)
}

// TestListsWalkedOnlyOnChange: the lists (streamed from the cache here,
// none kept decoded) are walked again only when the manifest, a list or
// the planned files on disk changed, and counted once a pass.
func TestListsWalkedOnlyOnChange(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.plan(t, 1, "00:00-23:59", "t1", "t2")
	e, c := w.appliance(t, t.TempDir(), &clock{t: inWindow}, 1e9)
	e.cfg.ListFiles, e.decoded = 1, newListLRU(1)
	reads := &peekCount{Cache: c}
	e.cache = reads
	ctx := context.Background()
	e.pass(ctx)
	if s := e.Status(); s.PresentFiles != 6 {
		t.Fatalf("first pass: %+v", s)
	}
	steps := []struct {
		name   string
		change func()
		reads  int64 // of the two lists
	}{
		{"nothing changed", func() {}, 0},
		{"a planned file lost", func() { c.Purge("t1/720p/seg-00001.m4s") }, 2 * 2}, // the fill's walk and the count
		{"nothing changed again", func() {}, 0},
		{"a new manifest, all on disk", func() { w.plan(t, 2, "00:00-23:59", "t1", "t2") }, 2}, // the pins' walk only
		{"unplanned objects stored", func() { pressure(t, c, 2, 1000) }, 0},
	}
	for _, st := range steps {
		st.change()
		reads.n.Store(0)
		e.pass(ctx)
		if got := reads.n.Load(); got != st.reads {
			t.Errorf("%s: %d list reads, want %d", st.name, got, st.reads)
		}
		if s := e.Status(); s.PresentFiles != 6 || s.PlannedFiles != 6 {
			t.Errorf("%s: %+v", st.name, s)
		}
		if _, got := e.Complete(); fmt.Sprint(got) != "[t1 t2]" {
			t.Errorf("%s: Complete() = %v", st.name, got)
		}
	}
}

// TestListsPastCapacityLeftAlone: a manifest planning more than the
// cache holds (after a failed disk, say) does not fetch again, pass after
// pass, the lists of the titles wholly past the capacity: nothing of
// them would be pinned, so each would be evicted as soon as stored.
func TestListsPastCapacityLeftAlone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	m := w.plan(t, 1, "00:00-23:59", "t1", "t2", "t3")
	// Room for t1 and its list alone: full once they are filled.
	list, err := os.Stat(filepath.Join(w.root, filelist.Path("t1", m.Titles[0].FilesDigest)))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := w.smallAppliance(t, m.Titles[0].Bytes+list.Size())
	ctx := context.Background()
	e.pass(ctx)
	e.pass(ctx)
	if s := e.Status(); s.OverCapacityBytes == 0 {
		t.Fatalf("the plan fits: %+v", s)
	}
	for i := range 3 {
		before := w.gets.Load()
		e.pass(ctx)
		if got := w.gets.Load() - before; got != 0 {
			t.Errorf("pass %d: %d GETs at the origin, want none (t3's list left alone)", i+3, got)
		}
	}
}
