package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ErrChecksum is returned by Store when a body does not match the checksum
// the catalog gives for it: nothing is stored.
var ErrChecksum = errors.New("cache: checksum mismatch")

// ErrNoDisk is returned by Store, and by Get for an object too large for
// the memory spool, when every directory of the disk tier failed.
var ErrNoDisk = errors.New("cache: no healthy disk")

// Has reports whether key is in the disk tier.
func (c *Cache) Has(key string) bool {
	for _, d := range c.disks {
		if !d.failed.Load() && d.has(key) {
			return true
		}
	}
	return false
}

// Peek returns key from the disk tier as Lookup does, but neither counts
// a hit, copies it into the memory tier nor promotes it: the appliance's
// own reads of what it stores (the fill executor walks each planned
// title's file list at every pass) are not traffic.
func (c *Cache) Peek(key string) (Hit, bool) {
	d, e, ok := c.find(key)
	if !ok {
		return Hit{}, false
	}
	fd, err := d.open(e) // checked, and dropped when corrupt
	if err != nil {
		return Hit{}, false
	}
	return Hit{Tier: TierDisk, Meta: &e.meta, fd: fd, hasFD: true}, true
}

// Generations returns two counters that only grow: all changes whenever
// an object enters or leaves the disk tier, pinned whenever a pinned one
// does or a directory fails. Equal counters say that what Has answers
// has not changed (for the pinned keys only, with pinned), so a caller
// need not ask it again.
func (c *Cache) Generations() (all, pinned uint64) {
	for _, d := range c.disks {
		all += d.gen.Load()
		pinned += d.pinGen.Load()
	}
	return all, pinned
}

// Capacity returns the budget of the healthy directories: the bytes the
// disk tier holds, less after a directory failed.
func (c *Cache) Capacity() int64 {
	var n int64
	for _, d := range c.disks {
		if !d.failed.Load() {
			n += d.max
		}
	}
	return n
}

// Pin makes keys the set of objects the fill manifest plans: they are not
// evicted while pinned; every other object is subject to eviction.
func (c *Cache) Pin(keys map[string]bool) {
	for _, d := range c.disks {
		d.setPinned(keys)
	}
}

// Store writes f's body into the disk tier under key: a planned fill, not
// a client miss, so it bypasses the memory tier and coalescing. The body
// must match meta.Size and, when sha256hex is set, its SHA-256; otherwise
// nothing is stored and the error says why. It returns the bytes written.
func (c *Cache) Store(ctx context.Context, key string, f *Fetched, sha256hex string) (int64, error) {
	defer f.Body.Close()
	d := c.target(key, f.Meta.Size)
	if d == nil {
		return 0, fmt.Errorf("%w: %s", ErrNoDisk, key)
	}
	if f.Meta.Size > d.max {
		return 0, fmt.Errorf("cache: %s: %d bytes is larger than the disk tier", key, f.Meta.Size)
	}
	w, err := d.create(key, f.Meta.Size)
	if err != nil {
		return 0, err
	}
	defer w.close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), ctxReader{ctx, f.Body})
	if err == nil && f.Meta.Size >= 0 && n != f.Meta.Size {
		err = fmt.Errorf("cache: %s: upstream sent %d of %d bytes", key, n, f.Meta.Size)
	}
	if err == nil && sha256hex != "" && hex.EncodeToString(h.Sum(nil)) != sha256hex {
		err = fmt.Errorf("%w: %s", ErrChecksum, key)
	}
	if err != nil {
		w.abort()
		return 0, err
	}
	meta := f.Meta
	meta.Size = n
	if meta.ETag == "" {
		meta.ETag = defaultETag(w.crc, n)
	}
	if err := w.commit(meta); err != nil {
		return 0, err
	}
	return n, nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
