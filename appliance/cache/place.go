package cache

import (
	"errors"
	"io/fs"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// Objects are placed across the disk tier's directories by rendezvous
// (highest random weight) hashing: each healthy directory scores the key,
// weighted by its budget, and the best score holds it. A directory that
// fails, or one added, moves only the keys it wins or won; the rest stay
// where they are.

// place returns the healthy directory of class cls (flashIdx or diskIdx)
// that should hold key, nil when the class has none.
func (c *Cache) place(cls int, key string) *disk {
	return placeAmong(c.classes[cls], key)
}

// placeAmong returns the healthy directory of dirs that should hold key,
// nil when every one failed.
func placeAmong(dirs []*disk, key string) *disk {
	if len(dirs) == 1 {
		if d := dirs[0]; !d.failed.Load() {
			return d
		}
		return nil
	}
	h := hashString(key)
	var best *disk
	bestScore := math.Inf(-1)
	for _, d := range dirs {
		if d.failed.Load() {
			continue
		}
		if s := score(h, d); s > bestScore {
			best, bestScore = d, s
		}
	}
	return best
}

// score is d's weighted rendezvous score for a key of hash h:
// weight / -ln(u) with u uniform in (0, 1) (Schindelhauer and Schomaker),
// so that each directory wins a share of keys proportional to its budget.
func score(h uint64, d *disk) float64 {
	u := (float64(mix64(h^d.seed)>>11) + 0.5) / (1 << 53)
	return float64(d.max) / -math.Log(u)
}

// find returns the directory and entry holding key: the directory key is
// placed on in each class first, then the others (an object stays where
// it was stored when a directory is added).
func (c *Cache) find(key string) (*disk, *diskEntry, bool) {
	var placed [2]*disk
	for cls := range placed {
		if p := c.place(cls, key); p != nil {
			placed[cls] = p
			if e, ok := p.lookup(key); ok {
				return p, e, true
			}
		}
	}
	for _, d := range c.disks {
		if d == placed[flashIdx] || d == placed[diskIdx] || d.failed.Load() {
			continue
		}
		if e, ok := d.lookup(key); ok {
			return d, e, true
		}
	}
	return nil, nil, false
}

// hashString is 64-bit FNV-1a.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is SplitMix64's finalizer: it spreads the bits of a key's hash
// combined with a directory's seed.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// ioError takes d out of service when err says its storage is broken:
// the device reports an I/O error or went away, the file system turned
// read-only, or the directory itself vanished (a file that is merely
// gone, evicted or purged meanwhile, is no fault). A full file system is
// no fault either: it evicts. It reports whether d is out of service.
func (d *disk) ioError(err error) bool {
	switch {
	case err == nil || d.failed.Load():
	case errors.Is(err, unix.EIO), errors.Is(err, unix.EROFS), errors.Is(err, unix.ENODEV),
		errors.Is(err, unix.ENXIO), errors.Is(err, unix.ESTALE), errors.Is(err, unix.EUCLEAN):
		d.fail(err)
	case errors.Is(err, fs.ErrNotExist) && !d.present():
		d.fail(err)
	}
	return d.failed.Load()
}

// present reports whether the directory's structure is still there.
func (d *disk) present() bool {
	for _, p := range []string{d.objDir, d.tmpDir} {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// fail takes d out of service: its objects leave the index (they become
// misses, filled again onto the other directories; the memory tier's
// copies stay, being good) and nothing is written to it any more. It
// stays failed until the process restarts.
func (d *disk) fail(err error) {
	if !d.failed.CompareAndSwap(false, true) {
		return
	}
	d.mu.Lock()
	d.failErr = err.Error()
	lost := len(d.index)
	d.index = map[string]*diskEntry{}
	d.used, d.transit, d.pinnedBytes, d.lastVictim = 0, 0, 0, ""
	d.gen.Add(1)
	d.pinGen.Add(1)
	d.policy = d.policyFor(max(d.max, 1))
	d.mu.Unlock()
	d.log.Error("cache: directory taken out of service", "dir", d.dir, "err", err, "objects_lost", lost)
}
