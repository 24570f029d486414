package evict

import "time"

// Request is one entry of a request trace. Session, Segment and At are
// the request's context, which only a SessionPolicy reads.
type Request struct {
	Key  string
	Size int64
	// Session identifies the viewing session (a CMCD sid, or a token or
	// client); zero means none is known.
	Session uint64
	// Segment is the object's position in its title's rendition, counted
	// from zero; it is read only with a Session.
	Segment int32
	// At is when the request came, from any fixed epoch; it never goes
	// back.
	At time.Duration
}

// Result is what a replay measured.
type Result struct {
	Requests, Hits      int64
	Bytes, HitBytes     int64
	Evictions, Inserted int64
}

// ByteHitRatio is the share of requested bytes served from the cache.
func (r Result) ByteHitRatio() float64 {
	if r.Bytes == 0 {
		return 0
	}
	return float64(r.HitBytes) / float64(r.Bytes)
}

// HitRatio is the share of requests served from the cache.
func (r Result) HitRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.Requests)
}

// Replay runs trace through a pull-through cache of capacity bytes that
// uses p, exactly as the disk tier does (insert on miss, evict while over
// budget), and returns the hit counts. Objects larger than the capacity
// are never cached.
func Replay(p Policy, capacity int64, trace []Request) Result {
	var r Result
	sizes := map[string]int64{}
	var used int64
	sp, _ := p.(SessionPolicy)
	for _, q := range trace {
		r.Requests++
		r.Bytes += q.Size
		if _, ok := sizes[q.Key]; ok {
			r.Hits++
			r.HitBytes += q.Size
			if sp != nil {
				sp.AccessRequest(q)
			} else {
				p.Access(q.Key)
			}
			continue
		}
		if q.Size > capacity {
			continue
		}
		sizes[q.Key] = q.Size
		used += q.Size
		r.Inserted++
		if sp != nil {
			sp.InsertRequest(q)
		} else {
			p.Insert(q.Key, q.Size)
		}
		for used > capacity {
			k, ok := p.Victim()
			if !ok {
				break
			}
			used -= sizes[k]
			delete(sizes, k)
			r.Evictions++
		}
	}
	return r
}
