package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Retry-After bounds.
const (
	// BlockedRetryAfter is the retryAfter of a blocked limit (the zero
	// Limit): a block lasts until an operator lifts it, so callers are
	// told to come back in a minute rather than never.
	BlockedRetryAfter = time.Minute
	// maxRetryAfter caps a computed retryAfter, whatever the arithmetic.
	maxRetryAfter = 24 * time.Hour
)

// numShards is how many independently locked parts a table has at most:
// enough that the gateway's goroutines on a small machine rarely meet on
// one lock.
const numShards = 32

// params is a Limit in the form buckets count with. A table's current
// params are swapped whole by SetLimit; a bucket remembers the params it
// last counted under and adopts new ones at its next use.
type params struct {
	lim       Limit
	unlimited bool
	blocked   bool
	// interval is the time one token takes to earn.
	interval time.Duration
	// tau is burst × interval: how far ahead of now a bucket may be
	// spent.
	tau time.Duration
}

// newParams returns lim's params; an invalid limit blocks.
func newParams(lim Limit) *params {
	switch {
	case lim.problem() != "" || lim.Blocked():
		return &params{lim: lim, blocked: true}
	case lim.Unlimited():
		return &params{lim: lim, unlimited: true}
	}
	iv := max(time.Duration(float64(time.Second)/lim.PerSecond), 1)
	return &params{lim: lim, interval: iv, tau: time.Duration(lim.Burst) * iv}
}

// bucket is one key's token bucket, kept as the moment it will be full
// again (the theoretical arrival time of the generic cell rate
// algorithm): with burst b and interval i it holds b - (full-now)/i
// tokens, all b once full is past. One time and no float keeps the
// arithmetic exact and the bucket small.
type bucket struct {
	full time.Time
	p    *params
}

// adopt makes b count under p from now on, keeping its tokens (no more
// than p's burst), as rate.Limiter's SetLimitAt and SetBurstAt do.
func (b *bucket) adopt(p *params, now time.Time) {
	old := b.p
	b.p = p
	debt := b.full.Sub(now)
	if debt <= 0 || old.interval == 0 {
		b.full = now
		return
	}
	tokens := min(float64(p.lim.Burst), float64(old.lim.Burst)-float64(debt)/float64(old.interval))
	missing := max(float64(p.lim.Burst)-tokens, 0)
	b.full = now.Add(time.Duration(missing * float64(p.interval)))
}

// spend returns the moment b would be full after n more tokens, and
// how long after now the caller must wait for them (zero or less: they
// are there).
func (b *bucket) spend(n int, now time.Time) (full time.Time, wait time.Duration) {
	base := b.full
	if base.Before(now) {
		base = now
	}
	full = base.Add(time.Duration(n) * b.p.interval)
	return full, full.Sub(now) - b.p.tau
}

// shard is a part of a table under one lock, padded to a cache line so
// that neighbouring shards' locks do not share one.
type shard struct {
	mu  sync.Mutex
	m   map[string]*bucket
	max int
	_   [40]byte
}

// Table is a bounded set of token buckets by key, all of one Limit. A
// key's bucket is made full on first use; when a shard is full, the
// buckets that are full again (idle) are forgotten, which changes
// nothing, and if fewer than an eighth of it were idle, arbitrary others
// are forgotten too, which gives their keys a fresh bucket: the price of
// a bound when more keys are active than it allows. A Table is safe for
// concurrent use.
type Table struct {
	seed   maphash.Seed
	p      atomic.Pointer[params]
	shards []shard
}

// NewTable returns a table of buckets of lim, keeping at most maxKeys
// (zero or less: DefaultMaxKeys). lim should be valid (Limit.Validate);
// an invalid one blocks, failing closed.
func NewTable(lim Limit, maxKeys int) *Table {
	return newTable(lim, maxKeys, maphash.MakeSeed())
}

// newTable returns a table hashing keys with seed, so that a Limiter can
// hash a request's key once for all its tables.
func newTable(lim Limit, maxKeys int, seed maphash.Seed) *Table {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	n := min(numShards, maxKeys)
	t := &Table{seed: seed, shards: make([]shard, n)}
	for i := range t.shards {
		t.shards[i].m = map[string]*bucket{}
		t.shards[i].max = maxKeys / n
		if i < maxKeys%n {
			t.shards[i].max++
		}
	}
	t.p.Store(newParams(lim))
	return t
}

// Limit returns the table's current limit.
func (t *Table) Limit() Limit { return t.p.Load().lim }

// SetLimit changes the table's limit. Existing buckets keep their tokens,
// up to the new burst, and earn at the new rate from their next use on;
// a change to unlimited or blocked forgets every bucket. lim should be
// valid; an invalid one blocks.
func (t *Table) SetLimit(lim Limit) {
	if t.p.Load().lim == lim {
		return
	}
	p := newParams(lim)
	t.p.Store(p)
	if !p.unlimited && !p.blocked {
		return
	}
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}

// Len returns how many buckets the table holds.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// noGiveBack is the giveBack of a take that needs none.
func noGiveBack() {}

// Take takes n tokens from key's bucket if it has them. giveBack returns
// them, for work that was not done after all; calling it again does
// nothing. When the bucket has too few, ok is false and retryAfter says
// when it will have them, at least a second and rounded up to whole
// seconds (BlockedRetryAfter for a blocked limit). n above the burst can
// never be taken: ok is false and retryAfter zero, and the caller should
// take less at a time. A successful Take allocates its giveBack, and
// keys longer than 64 bytes are copied to the heap; otherwise a key that
// has a bucket costs no allocation.
func (t *Table) Take(key string, n int, now time.Time) (giveBack func(), retryAfter time.Duration, ok bool) {
	var buf [64]byte
	k := append(buf[:0], key...)
	r, wait, ok := t.take(maphash.String(t.seed, key), k, n, now)
	if !ok {
		return nil, retryAfterOf(wait), false
	}
	if r.b == nil {
		return noGiveBack, 0, true
	}
	given := false
	return func() {
		r.sh.mu.Lock()
		defer r.sh.mu.Unlock()
		if !given {
			given = true
			r.b.full = r.b.full.Add(-time.Duration(n) * r.b.p.interval)
		}
	}, 0, true
}

// ref is a bucket tokens were taken from, to give them back.
type ref struct {
	sh *shard
	b  *bucket
}

// giveBack returns n tokens to r's bucket.
func (r ref) giveBack(n int) {
	if r.b == nil {
		return
	}
	r.sh.mu.Lock()
	r.b.full = r.b.full.Add(-time.Duration(n) * r.b.p.interval)
	r.sh.mu.Unlock()
}

// take takes n tokens from the bucket of key, whose hash under t.seed is
// h. On success, r is where to give them back (no bucket when the limit
// is unlimited or n is not positive); on failure wait is how long until
// they are there, zero when they never will be. key is only read.
func (t *Table) take(h uint64, key []byte, n int, now time.Time) (r ref, wait time.Duration, ok bool) {
	sh := &t.shards[h%uint64(len(t.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Loaded under the lock: SetLimit clears a shard after storing new
	// params, so no bucket of a dropped limit survives it.
	p := t.p.Load()
	switch {
	case p.unlimited || n <= 0:
		return ref{}, 0, true
	case p.blocked:
		return ref{}, BlockedRetryAfter, false
	case n > p.lim.Burst:
		return ref{}, 0, false
	}
	b := sh.m[string(key)]
	if b == nil {
		if len(sh.m) >= sh.max {
			sh.sweep(now)
		}
		b = &bucket{full: now, p: p}
		sh.m[string(key)] = b
	} else if b.p != p {
		b.adopt(p, now)
	}
	full, wait := b.spend(n, now)
	if wait > 0 {
		return ref{}, wait, false
	}
	b.full = full
	return ref{sh: sh, b: b}, 0, true
}

// wait returns how long the bucket of key would make a request for n
// tokens wait, without taking them: zero or less when they are there.
func (t *Table) wait(h uint64, key []byte, n int, now time.Time) time.Duration {
	sh := &t.shards[h%uint64(len(t.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p := t.p.Load()
	switch {
	case p.unlimited || n <= 0:
		return 0
	case p.blocked:
		return BlockedRetryAfter
	case n > p.lim.Burst:
		return 0
	}
	b := sh.m[string(key)]
	if b == nil {
		return 0
	}
	if b.p != p {
		b.adopt(p, now)
	}
	_, wait := b.spend(n, now)
	return wait
}

// sweep makes room in a full shard: it forgets the buckets that are full
// again, and if that freed less than an eighth of the shard, arbitrary
// others (map order is random) until it has. Forgetting few at a time
// would make every new key pay a scan of the shard.
func (sh *shard) sweep(now time.Time) {
	for k, b := range sh.m {
		if !b.full.After(now) {
			delete(sh.m, k)
		}
	}
	keep := sh.max - max(sh.max/8, 1)
	for k := range sh.m {
		if len(sh.m) <= keep {
			break
		}
		delete(sh.m, k)
	}
}

// retryAfterOf rounds a wait up to whole seconds, at least one and at
// most maxRetryAfter; zero (never) stays zero.
func retryAfterOf(wait time.Duration) time.Duration {
	switch {
	case wait == 0:
		return 0
	case wait >= maxRetryAfter:
		return maxRetryAfter
	case wait <= time.Second:
		return time.Second
	}
	return (wait + time.Second - 1).Truncate(time.Second)
}
