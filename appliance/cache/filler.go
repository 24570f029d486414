package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// chunk is how much of an upstream body is read and published at a time.
const chunk = 64 << 10

// fillOrJoin joins the fill for key, starting it if none runs, and waits
// until the upstream's headers are known.
func (c *Cache) fillOrJoin(ctx context.Context, key string) (Hit, error) {
	c.fmu.Lock()
	if c.ctx.Err() != nil {
		c.fmu.Unlock()
		return Hit{}, ErrClosed
	}
	f, ok := c.inflight[key]
	if ok {
		f.acquire()
		c.coalesced.Add(1)
	} else {
		f = newFill(strings.Clone(key))
		f.refs = 2 // the filler and this client
		f.cut = &c.streamsCut
		c.inflight[f.key] = f
		c.misses.Add(1)
		c.wg.Add(1)
		go c.runFill(f)
	}
	c.fmu.Unlock()

	select {
	case <-f.ready:
	case <-ctx.Done():
		f.unref()
		return Hit{}, ctx.Err()
	}
	if f.err != nil {
		f.unref()
		return Hit{}, f.err
	}
	return Hit{Tier: TierFill, Meta: &f.meta, fill: f}, nil
}

// runFill fetches f.key, spools it for the waiting clients, and on success
// stores it in both tiers.
func (c *Cache) runFill(f *fill) {
	defer c.wg.Done()
	defer f.unref()
	err := c.doFill(f)
	if err != nil && !errors.Is(err, ErrNotFound) {
		c.fillErrors.Add(1)
		c.log.Warn("cache: fill failed", "key", f.key, "err", err)
	}
	c.fmu.Lock()
	delete(c.inflight, f.key)
	c.fmu.Unlock()
	select {
	case <-f.ready:
		f.finish(err)
	default:
		f.err = err
		close(f.ready)
	}
}

func (c *Cache) doFill(f *fill) error {
	up, err := c.src.Fetch(c.ctx, f.key)
	if err != nil {
		return err
	}
	defer up.Body.Close()
	meta := up.Meta
	size := meta.Size

	// Choose the spool. The disk writer is optional for a memory spool (a
	// full or broken disk costs caching, not the response) and is the
	// spool itself for large or unknown-length objects.
	var buf []byte
	var w *diskWriter
	d := c.target(f.key, size)
	if d != nil && size >= 0 && size <= d.max {
		if w, err = d.create(f.key, size); err != nil {
			c.log.Warn("cache: not caching on disk", "key", f.key, "err", err)
			w = nil
		}
	}
	switch {
	case size >= 0 && size <= c.cfg.MaxSpoolBytes:
		buf = make([]byte, size)
		f.spool = memSpool(buf)
	case w != nil:
		f.spool = w
	case size < 0 && d != nil:
		if w, err = d.create(f.key, size); err != nil {
			return err
		}
		f.spool = w
	case d == nil:
		return fmt.Errorf("%w: %s: %d bytes is more than the memory spool holds", ErrNoDisk, f.key, size)
	default:
		return fmt.Errorf("cache: %s: %d bytes is larger than the disk tier and the memory spool", f.key, size)
	}
	if w != nil {
		f.release = w.close
	}
	f.meta = meta
	close(f.ready)

	n, err := c.copyBody(f, up.Body, buf, w)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("cache: %s: upstream sent %d of %d bytes", f.key, n, size)
	}
	if err != nil {
		if w != nil {
			w.abort()
		}
		return err
	}
	meta.Size = n
	if meta.ETag == "" {
		meta.ETag = defaultETag(crcOf(buf, w), n)
	}
	c.purgeMu.RLock()
	defer c.purgeMu.RUnlock()
	f.mu.Lock()
	purged := f.purged
	f.mu.Unlock()
	if purged {
		if w != nil {
			w.abort()
		}
		return nil
	}
	if w != nil && !w.done {
		if err := w.commit(meta); err != nil {
			c.log.Warn("cache: not caching on disk", "key", f.key, "err", err)
		}
	}
	if c.mem != nil && buf != nil {
		c.mem.set(f.key, meta, buf)
	}
	return nil
}

// copyBody reads the upstream body into the spool, writing it to disk as
// well when w is not the spool, and publishes progress as it goes.
func (c *Cache) copyBody(f *fill, body io.Reader, buf []byte, w *diskWriter) (int64, error) {
	var scratch []byte
	if buf == nil {
		scratch = make([]byte, chunk)
	}
	var n int64
	for {
		var p []byte
		if buf != nil {
			if n == int64(len(buf)) {
				// Expect EOF; a longer body is an error reported by the source.
				var one [1]byte
				m, err := body.Read(one[:])
				if m > 0 {
					return n + int64(m), nil
				}
				if errors.Is(err, io.EOF) {
					return n, nil
				}
				if err != nil {
					return n, err
				}
				continue
			}
			p = buf[n:min(n+chunk, int64(len(buf)))]
		} else {
			p = scratch
		}
		m, err := body.Read(p)
		if m > 0 {
			if w != nil && !w.done {
				if _, werr := w.Write(p[:m]); werr != nil {
					if buf == nil {
						return n, werr
					}
					// The memory spool still serves the clients.
					c.log.Warn("cache: not caching on disk", "key", f.key, "err", werr)
					w.abort()
				}
			}
			n += int64(m)
			f.advance(int64(m))
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func crcOf(buf []byte, w *diskWriter) uint32 {
	if buf != nil {
		return crc32.Checksum(buf, crcTable)
	}
	return w.crc
}

// defaultETag is the strong entity tag of an object whose upstream gave
// none: its checksum and length.
func defaultETag(crc uint32, n int64) string {
	return `"` + strconv.FormatUint(uint64(crc), 16) + "-" + strconv.FormatInt(n, 16) + `"`
}
