package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
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

// params is a Limit as a table counts with it. A table's current params
// are swapped whole by SetLimit; an entry remembers the params its
// limiter last counted under and adopts new ones at its next use, so that
// SetLimit need not visit every key.
type params struct {
	lim       Limit
	unlimited bool
	blocked   bool
}

// newParams returns lim's params; an invalid limit blocks.
func newParams(lim Limit) *params {
	switch {
	case lim.problem() != "" || lim.Blocked():
		return &params{lim: lim, blocked: true}
	case lim.Unlimited():
		return &params{lim: lim, unlimited: true}
	}
	return &params{lim: lim}
}

// wait returns how long a limiter of p takes to earn missing tokens: at
// least a nanosecond, since a refusal must never read as zero (never).
// The Limit bounds keep it within an int64 of nanoseconds, and the
// conversion drops the float's last bits, so that a wait of whole
// seconds is not rounded up to the next one.
func (p *params) wait(missing float64) time.Duration {
	return max(time.Duration(missing/p.lim.PerSecond*float64(time.Second)), 1)
}

// entry is one key's limiter. Every use of it happens under its shard's
// lock, so a check of its tokens and a take that follows see the same
// state.
type entry struct {
	lim *rate.Limiter
	// p is the params lim counts under.
	p *params
	// last is the latest time lim was asked about; a request of an
	// earlier time counts at last. Requests of one key from several
	// goroutines come slightly out of order, and rate.Limiter given an
	// earlier time moves its clock back to it and then earns the time in
	// between twice.
	last time.Time
}

// newEntry returns a full limiter of p, last used at now.
func newEntry(p *params, now time.Time) *entry {
	return &entry{lim: rate.NewLimiter(rate.Limit(p.lim.PerSecond), p.lim.Burst), p: p, last: now}
}

// use returns the time e counts a request at now at, and makes e's
// limiter count under p from then on, keeping its tokens up to p's burst.
func (e *entry) use(p *params, now time.Time) time.Time {
	if now.Before(e.last) {
		now = e.last
	} else {
		e.last = now
	}
	if e.p != p {
		e.lim.SetLimitAt(now, rate.Limit(p.lim.PerSecond))
		e.lim.SetBurstAt(now, p.lim.Burst)
		e.p = p
	}
	return now
}

// idle reports whether e's limiter is full at now: forgetting it changes
// nothing, since a key without one gets a full one.
func (e *entry) idle(now time.Time) bool {
	return e.lim.TokensAt(now) >= float64(e.p.lim.Burst)
}

// shard is a part of a table under one lock, padded to a cache line so
// that neighbouring shards' locks do not share one.
type shard struct {
	mu  sync.Mutex
	m   map[string]*entry
	max int
	_   [40]byte
}

// Table is a bounded set of token buckets by key, all of one Limit: a
// rate.Limiter per key, made full on first use. When a shard is full,
// the limiters that are full again (idle) are forgotten, which changes
// nothing, and if fewer than an eighth of it were idle, arbitrary others
// are forgotten too, which gives their keys a full limiter again: the
// price of a bound when more keys are active than it allows. An
// unlimited or blocked table keeps no limiters. A Table is safe for
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
		t.shards[i].m = map[string]*entry{}
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
// up to the new burst, and earn at the new rate from their next use on
// (each adopts it then, with rate.Limiter's SetLimitAt and SetBurstAt, so
// that a change costs nothing per key); a change to unlimited or blocked
// forgets every bucket. lim should be valid; an invalid one blocks.
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

// shardOf returns the shard of the key whose hash under t.seed is h.
func (t *Table) shardOf(h uint64) *shard {
	return &t.shards[h%uint64(len(t.shards))]
}

// noGiveBack is the giveBack of a take that needs none.
func noGiveBack() {}

// Take takes n tokens from key's bucket if it has them. giveBack returns
// them, for work that was not done after all; calling it again does
// nothing. It cancels the Take's rate.Reservation at the Take's time,
// which returns all n, unless since then the bucket has adopted a new
// limit, or the key has taken tokens more than the time n tokens take to
// earn after the Take: then none come back. A giveBack soon after its
// Take is a refund; a late one may not be. When the bucket has too few,
// ok is false and retryAfter says when it will have them, at least a
// second and rounded up to whole seconds (BlockedRetryAfter for a
// blocked limit). n above the burst can never be taken: ok is false and
// retryAfter zero, and the caller should take less at a time. A
// successful Take allocates its giveBack (two allocations), and keys
// longer than 64 bytes are copied to the heap; otherwise a key that has
// a bucket costs no allocation.
func (t *Table) Take(key string, n int, now time.Time) (giveBack func(), retryAfter time.Duration, ok bool) {
	var buf [64]byte
	k := append(buf[:0], key...)
	sh := t.shardOf(maphash.String(t.seed, key))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Loaded under the lock: SetLimit clears a shard after storing new
	// params, so no limiter of a dropped limit survives it.
	p := t.p.Load()
	switch {
	case p.unlimited || n <= 0:
		return noGiveBack, 0, true
	case p.blocked:
		return nil, BlockedRetryAfter, false
	}
	e, at, wait, ok := sh.check(k, p, n, now)
	if !ok {
		return nil, retryAfterOf(wait), false
	}
	if e == nil {
		e, at = sh.add(k, p, now), now
	}
	// Checked first, the reservation is for now: it never has to be
	// waited for, and giving it back is cancelling it. Copied into the
	// giver, it costs no allocation of its own.
	g := &giver{sh: sh, e: e, p: p, r: *e.lim.ReserveN(at, n), at: at}
	return g.giveBack, 0, true
}

// giver gives back the tokens of one Take.
type giver struct {
	sh *shard
	e  *entry
	// p is the params e counted under at the Take.
	p     *params
	r     rate.Reservation
	at    time.Time
	given bool
}

// giveBack cancels g's reservation, once. Not after e adopted new params:
// SetLimitAt moved the limiter's clock without a reservation, and
// cancelling at the Take's time would then earn the time since twice.
func (g *giver) giveBack() {
	g.sh.mu.Lock()
	defer g.sh.mu.Unlock()
	if !g.given && g.e.p == g.p {
		g.r.CancelAt(g.at)
	}
	g.given = true
}

// allow takes a token from the limiter of key, whose hash under t.seed is
// h, if it has one; if not, wait is how long until it will. It is Allow's
// path when a single limit applies. key is only read.
func (t *Table) allow(h uint64, key []byte, now time.Time) (wait time.Duration, ok bool) {
	sh := t.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p := t.p.Load()
	switch {
	case p.unlimited:
		return 0, true
	case p.blocked:
		return BlockedRetryAfter, false
	}
	e := sh.m[string(key)]
	if e == nil {
		sh.add(key, p, now).lim.AllowN(now, 1)
		return 0, true
	}
	at := e.use(p, now)
	if e.lim.AllowN(at, 1) {
		return 0, true
	}
	return p.wait(1 - e.lim.TokensAt(at)), false
}

// check reports whether the limiter of key in sh, counting under p, has
// n tokens at now, and if not how long until it will (zero: never, n
// being above the burst). It returns key's entry, nil while the key has
// none (and then the tokens are there: a new limiter is full), and the
// time to count at. sh must be locked, p loaded under its lock and
// neither unlimited nor blocked, and n positive. key is only read.
func (sh *shard) check(key []byte, p *params, n int, now time.Time) (e *entry, at time.Time, wait time.Duration, ok bool) {
	if n > p.lim.Burst {
		return nil, now, 0, false
	}
	e = sh.m[string(key)]
	if e == nil {
		return nil, now, 0, true
	}
	at = e.use(p, now)
	if tokens := e.lim.TokensAt(at); tokens < float64(n) {
		return e, at, p.wait(float64(n) - tokens), false
	}
	return e, at, 0, true
}

// add returns a new full limiter of p for key, making room in sh if it is
// full. sh must be locked and hold no limiter for key.
func (sh *shard) add(key []byte, p *params, now time.Time) *entry {
	if len(sh.m) >= sh.max {
		sh.sweep(now)
	}
	e := newEntry(p, now)
	sh.m[string(key)] = e
	return e
}

// sweep makes room in a full shard: it forgets the limiters that are full
// again, and if that freed less than an eighth of the shard, arbitrary
// others (map order is random) until it has. Forgetting few at a time
// would make every new key pay a scan of the shard.
func (sh *shard) sweep(now time.Time) {
	for k, e := range sh.m {
		if e.idle(now) {
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
