package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
)

// The scrub finds bit rot before a client does: it re-reads every object
// of each directory, at Config.ScrubRate bytes a second so that it never
// competes with the hit path for the disk, and drops those whose body no
// longer matches its checksum (their next request fetches them again). A
// read that fails with an I/O error takes the directory out of service.
// Between passes, hits verify on read the objects not verified within
// Config.VerifyAge (disk.open).

// scrubChunk is how much the scrub reads at a time.
const scrubChunk = 1 << 20

// Run scrubs the disk tier until ctx ends, one pass over each directory
// every Config.ScrubEvery at most, and with both classes moves objects
// between them (move.go); with ScrubRate zero and one class it returns at
// once. Fills need no Run: they are started by Get and joined by Close.
func (c *Cache) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if c.moves != nil {
		wg.Go(func() { c.runMovers(ctx) })
	}
	if c.cfg.ScrubRate > 0 {
		for _, d := range c.disks {
			wg.Go(func() { c.scrubLoop(ctx, d) })
		}
	}
	wg.Wait()
	return nil
}

func (c *Cache) scrubLoop(ctx context.Context, d *disk) {
	lim := rate.NewLimiter(rate.Limit(c.cfg.ScrubRate), scrubChunk)
	buf := make([]byte, scrubChunk)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		if !d.failed.Load() {
			d.scrubPass(ctx, lim, buf)
		}
		t.Reset(max(0, c.cfg.ScrubEvery-time.Since(start)))
	}
}

// scrubPass verifies every object d holds that was not verified since the
// pass began.
func (d *disk) scrubPass(ctx context.Context, lim *rate.Limiter, buf []byte) {
	d.mu.Lock()
	entries := make([]*diskEntry, 0, len(d.index))
	for _, e := range d.index {
		entries = append(entries, e)
	}
	d.mu.Unlock()
	began := d.now().UnixNano()
	for _, e := range entries {
		if ctx.Err() != nil || d.failed.Load() {
			return
		}
		if e.verifiedAt.Load() >= began {
			continue
		}
		if err := d.scrub(ctx, e, lim, buf); err != nil && ctx.Err() == nil {
			d.log.Warn("cache: scrub", "dir", d.dir, "key", e.key, "err", err)
		}
	}
}

// scrub verifies one object. It skips one evicted, purged or replaced
// meanwhile.
func (d *disk) scrub(ctx context.Context, e *diskEntry, lim *rate.Limiter, buf []byte) error {
	fd, err := openEntry(e)
	if errors.Is(err, fs.ErrNotExist) && d.present() {
		return nil
	}
	if err != nil {
		d.ioError(err)
		return fmt.Errorf("cache: scrub %s: %w", e.key, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != e.fileSize || !d.holds(e) {
		return nil
	}
	crc, err := crcFD(ctx, fd, e.meta.Size, buf, lim, nil)
	if ctx.Err() != nil {
		return nil
	}
	d.scrubbed.Add(1)
	d.scrubbedBytes.Add(e.meta.Size)
	if err == nil && crc != e.crc && d.holds(e) {
		d.scrubCorrupt.Add(1)
	}
	return d.settle(e, crc, err)
}

// holds reports whether e is still d's entry for its key.
func (d *disk) holds(e *diskEntry) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.index[e.key] == e
}
