package cache

import (
	"fmt"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
)

// memObject is an object held whole in the memory tier. Its body is shared
// by every response that serves it and is never modified; a hit is
// written to the socket straight from it. (Large objects were once kept
// in memfds and sent with sendfile: that costs the server less CPU, but on
// the loopback benchmark the receiver then spends far more, and Varnish's
// plain writes from memory won; see bench/edge-vs-nginx.)
type memObject struct {
	meta Meta
	body []byte
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
	})
	if err != nil {
		return nil, fmt.Errorf("cache: memory tier: %w", err)
	}
	m.c = c
	return m, nil
}

func (m *memTier) get(key string) (*memObject, bool) { return m.c.Get(key) }

// set offers an object to the tier, which may decline it.
func (m *memTier) set(key string, meta Meta, body []byte) {
	if int64(len(body)) <= m.maxItem {
		m.c.Set(key, &memObject{meta: meta, body: body}, int64(len(body))+memOverhead)
	}
}

func (m *memTier) del(key string) { m.c.Del(key) }

func (m *memTier) used() int64 { return m.c.MaxCost() - m.c.RemainingCost() }

func (m *memTier) close() { m.c.Close() }
