package cache

import (
	"fmt"
	"strings"
	"sync"
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
	key  string
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
	// keys are the objects offered to the tier and not yet evicted or
	// refused, so that delPrefix finds what ristretto cannot list. Only
	// sets, exits and purges take mu; hits do not.
	mu   sync.Mutex
	keys map[string]*memObject
}

func newMemTier(maxBytes, maxItem int64) (*memTier, error) {
	m := &memTier{maxItem: min(maxItem, maxBytes), keys: map[string]*memObject{}}
	// NumCounters should be about ten times the number of items the tier
	// holds when full; assume objects of 64 KiB on average, a mix of
	// segments and small playlists.
	counters := max(10*maxBytes/(64<<10), 10_000)
	c, err := ristretto.NewCache(&ristretto.Config[string, *memObject]{
		NumCounters:        counters,
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		OnEvict: func(it *ristretto.Item[*memObject]) {
			m.evictions.Add(1)
			m.forget(it.Value)
		},
		OnReject: func(it *ristretto.Item[*memObject]) { m.forget(it.Value) },
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
		o := &memObject{key: key, meta: meta, body: body}
		m.mu.Lock()
		m.keys[key] = o
		m.mu.Unlock()
		if !m.c.Set(key, o, int64(len(body))+memOverhead) {
			m.forget(o) // dropped under contention, with no callback
		}
	}
}

// forget drops o from keys unless a newer object of its key replaced it.
func (m *memTier) forget(o *memObject) {
	if o == nil {
		return
	}
	m.mu.Lock()
	if m.keys[o.key] == o {
		delete(m.keys, o.key)
	}
	m.mu.Unlock()
}

func (m *memTier) del(key string) {
	m.mu.Lock()
	delete(m.keys, key)
	m.mu.Unlock()
	m.c.Del(key)
}

// delPrefix removes every object whose key starts with prefix and returns
// how many it removed.
func (m *memTier) delPrefix(prefix string) int {
	var keys []string
	m.mu.Lock()
	for k := range m.keys {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
			delete(m.keys, k)
		}
	}
	m.mu.Unlock()
	for _, k := range keys {
		m.c.Del(k)
	}
	return len(keys)
}

func (m *memTier) used() int64 { return m.c.MaxCost() - m.c.RemainingCost() }

func (m *memTier) close() { m.c.Close() }
