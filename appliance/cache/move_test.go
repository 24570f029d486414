package cache

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestAbandonedDemotionStaysPinned: a victim pinned while its demotion
// was queued, then abandoned at the end of Run, is back in the budget but
// not in the eviction order.
func TestAbandonedDemotionStaysPinned(t *testing.T) {
	t.Parallel()
	d, _, _, first := demoting(t)
	d.setPinned(map[string]bool{first.key: true})
	d.keep(first) // Run ended before the move
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.index[first.key] != first || d.transit != 0 {
		t.Fatalf("pinned victim indexed %v, %d bytes in transit; want indexed, none in transit", d.index[first.key] == first, d.transit)
	}
	for {
		key, ok := d.policy.Victim()
		if !ok {
			break
		}
		if key == first.key {
			t.Fatal("the pinned victim is back in the eviction order")
		}
	}
}

// demoting opens a 250-byte directory whose demote hook queues every
// victim, counting the offers in offered (the test ends the moves), and
// adds 100-byte objects, with add, until the first one added is offered.
func demoting(t *testing.T) (d *disk, offered map[*diskEntry]int, add func(i int) *diskEntry, first *diskEntry) {
	t.Helper()
	d, err := openDisk(DirConfig{Path: t.TempDir(), Bytes: 250}, testDiskOptions())
	if err != nil {
		t.Fatal(err)
	}
	offered = map[*diskEntry]int{}
	d.demote = func(_ *disk, e *diskEntry) bool { offered[e]++; return true }
	add = func(i int) *diskEntry {
		e := newEntry(fmt.Sprintf("t1/seg-%02d.m4s", i), Meta{Size: 68}, filepath.Join(d.objDir, fmt.Sprint(i)), 100, 0)
		if err := d.add(e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	first = add(0)
	for i := 1; offered[first] == 0; i++ {
		add(i)
	}
	return d, offered, add, first
}
