package main

import (
	"fmt"

	"github.com/fillcast/fillcast/appliance/evict"
	"github.com/fillcast/fillcast/bench/cachesim/trace"
)

// counts are requested and hit bytes.
type counts struct {
	bytes, hitBytes int64
	reqs, hits      int64
}

func (c *counts) add(size int64, hit bool) {
	c.bytes += size
	c.reqs++
	if hit {
		c.hitBytes += size
		c.hits++
	}
}

func (c counts) ratio() float64 {
	if c.bytes == 0 {
		return 0
	}
	return float64(c.hitBytes) / float64(c.bytes)
}

func (c counts) hitRatio() float64 {
	if c.reqs == 0 {
		return 0
	}
	return float64(c.hits) / float64(c.reqs)
}

// observer wraps a policy to learn, request by request, what
// evict.Replay served from the cache: Replay calls Access for a hit and
// Insert for a miss, exactly once per request (no segment is larger than
// the cache), so the n-th call is the n-th request of the trace.
type observer struct {
	evict.Policy
	tr        *trace.Trace
	warmup    int
	next      int
	raw       counts // every request, to check against Replay's result
	all, peak counts // after the warm-up
	day       []counts
}

func newObserver(p evict.Policy, tr *trace.Trace, warmup int) *observer {
	return &observer{Policy: p, tr: tr, warmup: warmup, day: make([]counts, tr.Config.Days+1)}
}

func (o *observer) record(hit bool) {
	q := o.tr.Requests[o.next]
	o.next++
	size := o.tr.SegmentSize(int(q.Title), int(q.Segment))
	o.raw.add(size, hit)
	at := o.tr.Time(q.At)
	d := min(int(q.At.Hours())/24, len(o.day)-1)
	o.day[d].add(size, hit)
	if d < o.warmup {
		return
	}
	o.all.add(size, hit)
	if trace.PeakHours(at.Hour()) {
		o.peak.add(size, hit)
	}
}

// Insert implements evict.Policy: a miss.
func (o *observer) Insert(key string, size int64) {
	o.record(false)
	o.Policy.Insert(key, size)
}

// Access implements evict.Policy: a hit.
func (o *observer) Access(key string) {
	o.record(true)
	o.Policy.Access(key)
}

// check confirms that the observer saw what Replay counted.
func (o *observer) check(r evict.Result) error {
	if o.raw.bytes != r.Bytes || o.raw.hitBytes != r.HitBytes || o.raw.reqs != r.Requests {
		return fmt.Errorf("cachesim: observer out of step with replay: saw %d requests, %d of %d bytes hit; replay %d, %d of %d",
			o.raw.reqs, o.raw.hitBytes, o.raw.bytes, r.Requests, r.HitBytes, r.Bytes)
	}
	return nil
}

// InsertRequest implements evict.SessionPolicy: a miss, passed on with
// its session to a policy that reads it.
func (o *observer) InsertRequest(q evict.Request) {
	o.record(false)
	if sp, ok := o.Policy.(evict.SessionPolicy); ok {
		sp.InsertRequest(q)
		return
	}
	o.Policy.Insert(q.Key, q.Size)
}

// AccessRequest implements evict.SessionPolicy: a hit.
func (o *observer) AccessRequest(q evict.Request) {
	o.record(true)
	if sp, ok := o.Policy.(evict.SessionPolicy); ok {
		sp.AccessRequest(q)
		return
	}
	o.Policy.Access(q.Key)
}
