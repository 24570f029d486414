// Package latency measures how long the appliance takes to answer, for
// the p99 its heartbeats report (fillcast.Heartbeat.P99Millis), by which
// the control plane's squeeze tests judge how much load an appliance
// takes before it slows down.
//
// A Histogram counts durations in Buckets fixed, log-spaced buckets from
// Min to Max, each an atomic counter: recording is one bucket lookup and
// one atomic add, takes no lock and allocates nothing, so the server
// records every request on its hit path. The counters only grow. A reader
// takes a Snapshot at each heartbeat and subtracts the previous one
// (Snapshot.Sub), as the agent does with every other counter: any number
// of readers keep their own intervals, nothing is reset under a writer,
// and the requests of a heartbeat nobody accepted count in the next.
// Quantiles are interpolated within a bucket, so they are as precise as
// the buckets are narrow: 22%.
package latency

import (
	"math"
	"sync/atomic"
	"time"
)

// Buckets is the number of buckets: [0, Min), then 62 log-spaced ones
// up to Max, then [Max, ∞).
const Buckets = 64

// Min and Max bound the log-spaced buckets. Durations below Min share the
// first bucket; those from Max on share the last, whose quantiles read
// as Max.
const (
	Min = 50 * time.Microsecond
	Max = 10 * time.Second
)

// upper holds each bucket's exclusive upper bound in nanoseconds:
// upper[0] is Min, upper[Buckets-2] is Max, and the last bucket has none
// (math.MaxInt64). Computed once; never written after.
var upper = bounds()

// perLog2 is the number of log-spaced buckets per doubling.
var perLog2 = float64(Buckets-2) / math.Log2(float64(Max)/float64(Min))

func bounds() [Buckets]int64 {
	var b [Buckets]int64
	ratio := math.Pow(float64(Max)/float64(Min), 1/float64(Buckets-2))
	for i := range Buckets - 1 {
		b[i] = int64(math.Round(float64(Min) * math.Pow(ratio, float64(i))))
	}
	b[Buckets-2] = int64(Max) // exact, whatever the rounding above
	b[Buckets-1] = math.MaxInt64
	return b
}

// Bucket returns the bucket d falls in: the i with Bounds(i) holding d.
func Bucket(d time.Duration) int {
	ns := int64(d)
	switch {
	case ns < int64(Min):
		return 0
	case ns >= int64(Max):
		return Buckets - 1
	}
	// log2(ns/Min) from the float's exponent and mantissa, read as a
	// straight line between powers of two: never above the true log2 and
	// at most 0.09 below it, a third of a bucket. The loops settle the
	// exact bucket against the table in a step or two.
	x := math.Float64bits(float64(ns) / float64(Min))
	log2 := float64(int64(x>>52)-1023) + float64(x&(1<<52-1))/(1<<52)
	i := 1 + int(log2*perLog2)
	for i < Buckets-1 && ns >= upper[i] {
		i++
	}
	for i > 1 && ns < upper[i-1] {
		i--
	}
	return i
}

// Bounds returns bucket i's range [lo, hi); hi is math.MaxInt64 for the
// last bucket.
func Bounds(i int) (lo, hi time.Duration) {
	if i > 0 {
		lo = time.Duration(upper[i-1])
	}
	return lo, time.Duration(upper[i])
}

// Histogram counts durations by bucket. The zero value is empty and
// ready; it must not be copied once in use.
type Histogram struct {
	counts [Buckets]atomic.Uint64
}

// Record counts d (negative durations count as 0). It takes no lock and
// does not allocate.
func (h *Histogram) Record(d time.Duration) { h.counts[Bucket(d)].Add(1) }

// Snapshot returns the counts so far. The buckets are read one by one,
// not at one instant: a duration recorded meanwhile may or may not be in
// it, and is in the next one.
func (h *Histogram) Snapshot() Snapshot {
	var s Snapshot
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	return s
}

// Snapshot is a histogram's counts per bucket at some time, or, made by
// Sub, over an interval.
type Snapshot struct {
	Counts [Buckets]uint64
}

// Sub returns the counts of s that prev, an earlier snapshot of the same
// histogram, does not have: what was recorded in between. A bucket lower
// in s than in prev (snapshots of different histograms) counts 0.
func (s Snapshot) Sub(prev Snapshot) Snapshot {
	var d Snapshot
	for i, n := range s.Counts {
		if p := prev.Counts[i]; n > p {
			d.Counts[i] = n - p
		}
	}
	return d
}

// Count returns the number of durations counted.
func (s Snapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1; 0.99 is the p99) of the
// durations counted, 0 if none. As Prometheus' histogram_quantile does,
// it finds the bucket where the rank q·Count falls and places it by the
// share of that bucket's counts below the rank: linearly in the first
// bucket, geometrically in the log-spaced ones, which is linear in the
// log of the duration. The last bucket has no upper bound: its quantiles
// read as Max, the least they can be.
func (s Snapshot) Quantile(q float64) time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(n)
	var below uint64
	for i, c := range s.Counts {
		if c == 0 {
			continue
		}
		if float64(below+c) < rank {
			below += c
			continue
		}
		f := (rank - float64(below)) / float64(c)
		lo, hi := Bounds(i)
		switch i {
		case 0:
			return time.Duration(f * float64(hi))
		case Buckets - 1:
			return Max
		}
		return time.Duration(float64(lo) * math.Pow(float64(hi)/float64(lo), f))
	}
	return Max // not reached: the last counted bucket holds rank ≤ n
}
