package cache

import (
	"fmt"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sys/unix"
)

// memfdMin is the size from which a memory-tier object lives in a memfd
// (anonymous RAM file) instead of a Go slice. Large objects are then sent
// with sendfile straight from their pages, as the disk tier's are from the
// page cache, instead of being copied through write(); small ones go out
// in the same write as the headers.
const memfdMin = 64 << 10

// memObject is an object held whole in the memory tier: in body, shared
// by every response that serves it and never modified, or in a memfd.
type memObject struct {
	meta Meta
	body []byte
	fd   int // memfd, or -1
	// refs counts the tier's own reference and the hits being served
	// from fd; the memfd closes when the last one is dropped.
	refs atomic.Int32
}

// newMemObject keeps body in memory, moving it to a memfd when large.
func newMemObject(meta Meta, body []byte) (*memObject, error) {
	o := &memObject{meta: meta, fd: -1}
	o.refs.Store(1)
	if len(body) < memfdMin {
		o.body = body
		return o, nil
	}
	fd, err := unix.MemfdCreate("fillcast-object", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("cache: memfd: %w", err)
	}
	for off := 0; off < len(body); {
		n, err := unix.Pwrite(fd, body[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("cache: fill memfd: %w", err)
		}
		off += n
	}
	o.fd = fd
	return o, nil
}

// acquire takes a reference for a hit; it fails once the tier has let go
// of the object and the memfd may be closed.
func (o *memObject) acquire() bool {
	for {
		r := o.refs.Load()
		if r <= 0 {
			return false
		}
		if o.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// unref drops a reference, closing the memfd with the last one.
func (o *memObject) unref() {
	if o.refs.Add(-1) == 0 && o.fd >= 0 {
		unix.Close(o.fd)
	}
}

// memOverhead approximates the bytes a memory-tier entry costs beyond its
// body (headers, ristretto bookkeeping), so that many small playlists do
// not overrun the budget.
const memOverhead = 512

// memTier is the ristretto-backed memory tier. Ristretto admits with
// TinyLFU and evicts with sampled LFU, both by cost in bytes, which suits a
// tier far smaller than the working set.
type memTier struct {
	c         *ristretto.Cache[string, *memObject]
	maxItem   int64
	evictions atomic.Int64
}

func newMemTier(maxBytes, maxItem int64) (*memTier, error) {
	m := &memTier{maxItem: min(maxItem, maxBytes)}
	// NumCounters should be about ten times the number of items the tier
	// holds when full; assume objects of 64 KiB on average, a mix of
	// segments and small playlists.
	counters := max(10*maxBytes/(64<<10), 10_000)
	c, err := ristretto.NewCache(&ristretto.Config[string, *memObject]{
		NumCounters:        counters,
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		OnEvict:            func(*ristretto.Item[*memObject]) { m.evictions.Add(1) },
		OnExit: func(o *memObject) {
			if o != nil {
				o.unref()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cache: memory tier: %w", err)
	}
	m.c = c
	return m, nil
}

// get returns the object for key; a memfd object comes with a reference
// the caller must drop.
func (m *memTier) get(key string) (*memObject, bool) {
	o, ok := m.c.Get(key)
	if !ok || (o.fd >= 0 && !o.acquire()) {
		return nil, false
	}
	return o, true
}

// set offers an object to the tier, which may decline it.
func (m *memTier) set(key string, meta Meta, body []byte) error {
	if int64(len(body)) > m.maxItem {
		return nil
	}
	o, err := newMemObject(meta, body)
	if err != nil {
		return err
	}
	if !m.c.Set(key, o, int64(len(body))+memOverhead) {
		o.unref() // dropped before ristretto kept it: no OnExit will come
	}
	return nil
}

func (m *memTier) del(key string) { m.c.Del(key) }

func (m *memTier) used() int64 { return m.c.MaxCost() - m.c.RemainingCost() }

// close drops every object (closing their memfds once their hits end).
func (m *memTier) close() {
	m.c.Clear()
	m.c.Close()
}
