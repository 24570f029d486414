// Package evict holds the eviction policies of the appliance's disk tier.
// A policy only orders keys; the tier owns the bytes and asks the policy
// for a victim while it is over budget.
//
// The disk tier uses TinyLFU: a window-TinyLFU (Einziger et al., "TinyLFU:
// A Highly Efficient Cache Admission Policy", ACM ToS 2017) sized in
// bytes, whose popularity estimates know that the tier's keys are
// "titleID/path" segments of video titles. Video request traces are
// dominated by one-hit wonders (a segment of a title watched once by one
// viewer), and which segments come back is decided by how many viewers
// their title draws. So:
//
//   - Every request that reaches the tier is counted in a Sketch, a
//     count-min sketch with periodic halving, shared by all the tier's
//     directories (and used by the tier to place the most popular objects
//     on flash). Next to each key it counts the key's title, which gives
//     the title's mean requests per segment.
//   - An object's popularity is its own recent count plus its title's
//     mean: the segments of a title that many viewers watch are worth
//     keeping from their first request, and the rarely requested segments,
//     whose own counts are all 0 or 1, are told apart by how often their
//     title is watched.
//   - Aging: the counts halve every sample window (five requests per
//     object the cache holds), the title counts every eighth window. A title
//     first seen less than that ago has its mean scaled up to the full
//     memory, so that a new release that draws several viewers in its
//     first hour competes with titles whose counts were gathered over
//     days.
//   - New objects enter a small window (2 % of the bytes), FIFO, which
//     catches viewers who start the same title minutes apart. The
//     window's oldest object then enters the main area only if it was
//     requested while in the window or is more popular than the main
//     area's victim; otherwise it goes. A scan of cold segments (a binge
//     of an unpopular title) therefore only ever displaces window objects.
//   - The main area's victim is the least popular of 16 objects drawn at
//     random (as Redis's approximated LFU does): close to the true least
//     popular, without reordering anything on a hit. A hit is a Sketch
//     Touch and a map lookup, and allocates nothing.
//
// On bench/cachesim's trace (Zipf 0.8 over titles, daily new releases, a
// cache of 10 % of the catalog) TinyLFU's byte hit ratio is ahead of
// S3-FIFO's, which the tier used before; see the repository README for the
// figures.
//
// Interval, an experiment of bench/cachesim not yet used by the tier, is a
// SessionPolicy: told each request's viewing session, position and time,
// it predicts when the viewers behind a cached segment on the same title
// will reach it (interval caching), and adds TinyLFU's popularity for the
// requests no live viewer will make. The tier would have to pass the
// session (the CMCD sid) and the segment's position to use it.
//
// S3-FIFO (Yang et al., SOSP 2023) is kept for comparison: it admits new
// objects into a small FIFO (10 % of the bytes) and promotes to the main
// FIFO only those requested again while there. LRU is the baseline, and
// Belady's offline optimum the upper bound, of the trace replayers.
package evict

// Policy decides which cached object to drop next. Implementations are not
// safe for concurrent use; the caller serialises calls.
type Policy interface {
	// Insert records a new object of size bytes.
	Insert(key string, size int64)
	// Access records a hit on key; unknown keys are ignored.
	Access(key string)
	// Remove forgets key (purged or found corrupt).
	Remove(key string)
	// Victim removes and returns the next object to evict, or false when
	// the policy holds nothing.
	Victim() (key string, ok bool)
}

// SessionPolicy is a Policy that also learns who requested what, and
// when: the viewing session, the object's position in its title and the
// request's time, which Request carries. Replay calls InsertRequest and
// AccessRequest instead of Insert and Access on a policy that implements
// it; Insert and Access then stand for requests of no known session at
// the last time seen.
type SessionPolicy interface {
	Policy
	// InsertRequest records a miss of q, which the caller is filling.
	InsertRequest(q Request)
	// AccessRequest records a hit of q; unknown keys are ignored.
	AccessRequest(q Request)
}
