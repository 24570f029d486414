// Package evict holds the eviction policies of the appliance's disk tier.
// A policy only orders keys; the tier owns the bytes and asks the policy
// for a victim while it is over budget.
//
// The disk tier uses S3-FIFO (Yang et al., SOSP 2023) sized in bytes. Video
// request traces are dominated by one-hit wonders: a segment of a title
// watched once by one viewer. LRU lets each of them push a popular segment
// towards eviction; S3-FIFO admits new objects into a small FIFO (10 % of
// the bytes) and promotes to the main FIFO only those requested again while
// there, so a scan of cold segments cannot flush the hot set. The main FIFO
// gives objects with recent hits another lap (a 2-bit clock) instead of
// reordering on every hit, which keeps hits cheap and lock hold times short.
// A ghost list remembers recently demoted keys so that an object coming
// back soon after its eviction goes straight to the main FIFO.
//
// LRU is kept as the baseline the trace replayer compares against.
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
