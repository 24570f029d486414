package cache

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Each directory keeps its objects' total size within its budget by
// evicting in its policy's order: after each commit, and when the file
// system refuses a write as full. Objects the fill manifest plans are
// pinned out of that order.

// setPinned replaces the pinned set: newly pinned objects leave the
// eviction order, unpinned ones join it (as new arrivals, so the ones no
// longer planned and not requested go first).
func (d *disk) setPinned(keys map[string]bool) {
	d.mu.Lock()
	old := d.pinned
	d.pinned = keys
	d.pinnedBytes = 0
	for k, e := range d.index {
		if keys[k] {
			d.pinnedBytes += e.fileSize
		}
		switch was, is := old[k], keys[k]; {
		case was && !is:
			d.policy.Insert(k, e.fileSize)
		case !was && is:
			d.policy.Remove(k)
		}
	}
	victims := d.evictLocked(0)
	d.mu.Unlock()
	d.removeFiles(victims)
}

// evictLocked removes entries until the disk is within budget and at
// least need bytes are freed, and returns them; their files are removed
// outside the lock. Within the budget (need 0), a victim the demote hook
// takes stays indexed, in transit, until its move ends; need > 0 frees
// space on the file system, so it demotes nothing.
func (d *disk) evictLocked(need int64) []*diskEntry {
	var victims []*diskEntry
	for freed := int64(0); d.used-d.transit > d.max || freed < need; {
		key, ok := d.policy.Victim()
		if !ok {
			break
		}
		e, ok := d.index[key]
		if !ok || e.moving {
			// A victim being demoted left the budget already; a new pin
			// set may have put it back in the order meanwhile.
			continue
		}
		d.lastVictim = key
		freed += e.fileSize
		if need == 0 && d.demote != nil && d.demote(d, e) {
			e.moving = true
			d.transit += e.fileSize
			continue
		}
		delete(d.index, key)
		d.used -= e.fileSize
		d.changedLocked(key)
		victims = append(victims, e)
	}
	d.evictions.Add(int64(len(victims)))
	return victims
}

// makeRoom evicts objects worth at least need bytes, for a write the file
// system refused as full (its budget may be more than the file system
// holds, or something else filled it). It reports whether it evicted any;
// it evicts nothing for more than the file system's size.
func (d *disk) makeRoom(need int64) bool {
	var st unix.Statfs_t
	if unix.Statfs(d.dir, &st) == nil && need > int64(st.Blocks)*st.Bsize {
		return false // it cannot fit: evicting would only empty the cache
	}
	d.mu.Lock()
	victims := d.evictLocked(need)
	d.mu.Unlock()
	d.removeFiles(victims)
	if len(victims) > 0 {
		d.log.Warn("cache: file system full, evicted to make room", "dir", d.dir, "objects", len(victims))
	}
	return len(victims) > 0
}

func (d *disk) removeFiles(es []*diskEntry) {
	for _, e := range es {
		if d.onEvict != nil {
			d.onEvict(e.key)
		}
		if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("cache: remove evicted object", "key", e.key, "err", err)
		}
	}
}
