package accounts

import (
	"sync"
	"time"
)

// leaseCache remembers for CacheTTL the leases this node found fresh or
// made, so that a player asking again, or keeping its stream alive, costs
// no read of the store. A lease ended through another node may thus be
// taken as live here for up to CacheTTL, as a revoked session may.
type leaseCache struct {
	mu  sync.RWMutex
	max int
	m   map[leaseKey]leaseEntry
}

type leaseKey struct{ account, id string }

type leaseEntry struct {
	st    Stream
	until time.Time
}

func newLeaseCache(max int) *leaseCache {
	return &leaseCache{max: max, m: make(map[leaseKey]leaseEntry)}
}

// get returns the account's lease of id if cached and not stale.
func (c *leaseCache) get(account, id string, now time.Time) (Stream, bool) {
	c.mu.RLock()
	e, ok := c.m[leaseKey{account, id}]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return Stream{}, false
	}
	return e.st, true
}

func (c *leaseCache) put(st Stream, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		n := max(c.max/8, 1) // full: drop an eighth, by map order
		for k := range c.m {
			if n == 0 {
				break
			}
			delete(c.m, k)
			n--
		}
	}
	c.m[leaseKey{st.Account, st.ID}] = leaseEntry{st: st, until: until}
}

func (c *leaseCache) drop(account, id string) {
	c.mu.Lock()
	delete(c.m, leaseKey{account, id})
	c.mu.Unlock()
}
