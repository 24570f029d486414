package cache

import (
	"github.com/fillcast/fillcast/appliance/evict"
)

// The disk tier's directories come in two classes, as an Open Connect
// storage appliance holds its catalog: flash for the most requested
// objects, hard disks for the rest. Within a class, objects are placed by
// rendezvous hashing (place.go). Between the classes they are placed by
// popularity: one count-min sketch (evict.Sketch) counts the disk tier's
// requests, and an object goes to flash when it has room or when the
// object beats the one flash evicted last; a flash victim that the disk
// class would keep is demoted there rather than dropped, and a disk-class
// hit that now beats flash's last victim is promoted (move.go). A cache
// of one class places by hashing alone, as before classes existed.

// Class is the kind of storage a directory is on.
type Class string

// The classes.
const (
	// ClassFlash is solid-state storage: it holds the most requested
	// objects.
	ClassFlash Class = "flash"
	// ClassDisk is spinning disks: they hold the rest.
	ClassDisk Class = "disk"
)

// classIndex is a class's position in Cache.classes.
func classIndex(c Class) int {
	if c == ClassDisk {
		return diskIdx
	}
	return flashIdx
}

// classes are the indexes of Cache.classes, in the order a hit looks.
const (
	flashIdx = 0
	diskIdx  = 1
)

// sketchKeys sizes the popularity sketch for the disk tier's whole
// budget (evict.SketchKeys).
func sketchKeys(dirs []DirConfig) int {
	var total int64
	for _, d := range dirs {
		total += d.Bytes
	}
	return evict.SketchKeys(total)
}

// newPolicy returns the eviction policy of a directory of bytes: TinyLFU
// counting in the cache's one sketch, which it touches on every insert (a
// fill, a move, or the index rebuilt at start-up) and hit. It is the one
// place the policy is chosen.
func (c *Cache) newPolicy(bytes int64) evict.Policy {
	return evict.NewTinyLFU(bytes, c.sketch)
}

// Sketch returns the popularity sketch the cache places objects between
// classes by: the one a sketch-aware eviction policy counts in.
func (c *Cache) Sketch() *evict.Sketch { return c.sketch }

// target returns the directory a new object of size bytes (-1: unknown)
// is written to: flash when flash admits it, else the disk class; nil
// when every directory failed.
func (c *Cache) target(key string, size int64) *disk {
	f, d := c.place(flashIdx, key), c.place(diskIdx, key)
	switch {
	case f == nil:
		return d
	case d == nil:
		return f
	case c.admits(f, key, max(size, 0)):
		return f
	}
	return d
}

// admits reports whether d would keep an object of size bytes: one no
// larger than its budget, for which it has room or which is requested
// more often than the one d evicted last (what d would evict next is of
// the same kind) while objects not pinned could make the room.
func (c *Cache) admits(d *disk, key string, size int64) bool {
	if size > d.max {
		return false
	}
	d.mu.Lock()
	room := d.used-d.transit+size <= d.max
	evictable := d.pinnedBytes+size <= d.max
	victim := d.lastVictim
	d.mu.Unlock()
	return room || evictable && c.sketch.Estimate(key) > c.sketch.Estimate(victim)
}

// promote queues a move of e, just hit on the disk-class directory d, to
// flash when its popularity now beats what flash would evict. It runs on
// the hit path: it allocates nothing, and a move it cannot queue now (the
// movers are busy) waits for a later hit.
func (c *Cache) promote(d *disk, e *diskEntry) {
	if d.class != diskIdx || !c.moving.Load() || e.promoting.Load() {
		return
	}
	f := c.place(flashIdx, e.key)
	if f == nil || !c.admits(f, e.key, e.fileSize) || !e.promoting.CompareAndSwap(false, true) {
		return
	}
	select {
	case c.moves <- move{from: d, e: e, to: flashIdx}:
	default:
		e.promoting.Store(false)
	}
}

// demote is a flash directory's hook for a victim of its eviction: it
// queues the victim's move to the disk class and reports whether it did
// (the victim then stays readable where it is until the move ends).
// Called with the directory's lock held: it only queues.
func (c *Cache) demote(from *disk, e *diskEntry) bool {
	if !c.moving.Load() {
		return false
	}
	select {
	case c.moves <- move{from: from, e: e, to: diskIdx}:
		return true
	default:
		return false
	}
}
