package evict

import (
	"fmt"
	"sort"
	"time"
)

// IntervalConfig shapes an Interval policy. The zero value of every field
// means its default, as DefaultIntervalConfig spells out.
type IntervalConfig struct {
	// SegmentDuration is the playing time of a segment: how far apart a
	// viewer requests consecutive segments. Zero means 6s.
	SegmentDuration time.Duration
	// Idle is how long a session may go without a request before it
	// counts as gone. Zero means 30s.
	Idle time.Duration
	// HalfLife is the half-life of a title's count of session starts,
	// from which its rate of new viewers is estimated. Zero means 12h.
	HalfLife time.Duration
	// Samples is how many cached objects a victim is chosen from. Zero
	// means 32.
	Samples int
	// Trailing is how many viewers behind a cached object its predicted
	// next request considers. Zero means 4.
	Trailing int
}

// DefaultIntervalConfig returns the configuration that the zero
// IntervalConfig stands for.
func DefaultIntervalConfig() IntervalConfig {
	return IntervalConfig{
		SegmentDuration: 6 * time.Second,
		Idle:            30 * time.Second,
		HalfLife:        12 * time.Hour,
		Samples:         32,
		Trailing:        4,
	}
}

func (c IntervalConfig) withDefaults() IntervalConfig {
	d := DefaultIntervalConfig()
	if c.SegmentDuration == 0 {
		c.SegmentDuration = d.SegmentDuration
	}
	if c.Idle == 0 {
		c.Idle = d.Idle
	}
	if c.HalfLife == 0 {
		c.HalfLife = d.HalfLife
	}
	if c.Samples == 0 {
		c.Samples = d.Samples
	}
	if c.Trailing == 0 {
		c.Trailing = d.Trailing
	}
	return c
}

// Validate reports the first field that cannot work. Zero fields are
// valid: they mean the defaults.
func (c IntervalConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.SegmentDuration < 0:
		return fmt.Errorf("evict: segment duration %v: want a positive duration, such as 6s", c.SegmentDuration)
	case c.Idle < c.SegmentDuration:
		return fmt.Errorf("evict: idle %v: want at least the segment duration %v, such as 30s", c.Idle, c.SegmentDuration)
	case c.HalfLife < 0:
		return fmt.Errorf("evict: half-life %v: want a positive duration, such as 12h", c.HalfLife)
	case c.Samples < 1 || c.Samples > 1024:
		return fmt.Errorf("evict: samples %d: want 1 to 1024, such as 32", c.Samples)
	case c.Trailing < 1 || c.Trailing > 64:
		return fmt.Errorf("evict: trailing %d: want 1 to 64, such as 4", c.Trailing)
	}
	return nil
}

// Interval is a session-aware policy for video segments: interval caching
// (Dan and Sitaram, "Buffer management policy for an on-demand video
// server", IBM RC 19347, 1993) turned into a predicted next-request time
// per object. Viewers of a title walk its segments in order at the
// playing rate, so a segment just fetched by one viewer will be requested
// by each viewer behind it on the same title when that viewer reaches it:
// at the trailing viewer's virtual start (the time it would have
// requested segment 0) plus the segment's position times the segment
// duration, a time that does not move while both keep playing.
//
// An object's hit density (expected requests per second) is the best,
// over up to Trailing live viewers behind it, nearest first, of the
// chance that one of them reaches it (each plays that far with the
// probability learned from every session's continuations) over the time
// that takes; plus the rate of requests no live viewer will make,
// estimated from its own and its title's recent counts in a TinyLFU
// Sketch and from the title's decayed rate of session starts times the
// share of sessions that request its position. The victim is the object
// of least density among Samples cached objects drawn at random and the
// latest fill, which is thus admitted only if it is predicted to be
// requested sooner than what it would evict. Sizes cancel out of the
// byte hit ratio (see score).
//
// A hit is map lookups and a few slice moves, and allocates nothing.
// Interval needs what a SessionPolicy is told; through plain Insert and
// Access it falls back to title popularity. Not safe for concurrent use.
type Interval struct {
	cfg    IntervalConfig
	sketch *Sketch
	dt     float64 // segment duration, seconds
	nodes  map[string]*inode
	cached []*inode
	fresh  *inode // latest fill, a candidate of every Victim while cached
	free   *inode
	track  tracker
	rng    uint64
}

// inode is a cached object.
type inode struct {
	key   string
	size  int64
	title *ititle
	seg   int32
	idx   int     // in cached
	last  float64 // time of the last request, seconds
	next  *inode  // free list
}

var _ SessionPolicy = (*Interval)(nil)

// NewInterval returns an empty Interval policy for a cache of capacity
// bytes, configured by cfg, that counts requests in s (which may be
// shared, as TinyLFU's). A nil s means a sketch of its own, of
// SketchKeys(capacity).
func NewInterval(capacity int64, s *Sketch, cfg IntervalConfig) (*Interval, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if s == nil {
		s = NewSketch(SketchKeys(capacity))
	}
	cfg = cfg.withDefaults()
	p := &Interval{
		sketch: s,
		cfg:    cfg,
		dt:     cfg.SegmentDuration.Seconds(),
		nodes:  map[string]*inode{},
		rng:    0x9e3779b97f4a7c15,
	}
	p.track.init(cfg)
	return p, nil
}

// Insert implements Policy: a fill of no known session.
func (p *Interval) Insert(key string, size int64) {
	p.InsertRequest(Request{Key: key, Size: size, Segment: -1, At: time.Duration(p.track.at)})
}

// Access implements Policy: a hit of no known session.
func (p *Interval) Access(key string) {
	p.AccessRequest(Request{Key: key, Segment: -1, At: time.Duration(p.track.at)})
}

// InsertRequest implements SessionPolicy.
func (p *Interval) InsertRequest(q Request) {
	p.sketch.Touch(q.Key)
	t, seg := p.track.observe(q)
	p.Remove(q.Key)
	n := p.free
	if n != nil {
		p.free = n.next
	} else {
		n = new(inode)
	}
	*n = inode{key: q.Key, size: q.Size, title: t, seg: seg, idx: len(p.cached), last: p.track.now}
	p.nodes[q.Key] = n
	p.cached = append(p.cached, n)
	p.fresh = n
}

// AccessRequest implements SessionPolicy.
func (p *Interval) AccessRequest(q Request) {
	p.sketch.Touch(q.Key)
	p.track.observe(q)
	if n, ok := p.nodes[q.Key]; ok {
		n.last = p.track.now
	}
}

// Remove implements Policy.
func (p *Interval) Remove(key string) {
	if n, ok := p.nodes[key]; ok {
		p.drop(n)
	}
}

// Victim implements Policy.
func (p *Interval) Victim() (string, bool) {
	if len(p.cached) == 0 {
		return "", false
	}
	var v *inode
	var vs float64
	consider := func(n *inode) {
		if s := p.score(n); v == nil || s > vs || (s == vs && n.last < v.last) {
			v, vs = n, s
		}
	}
	if p.fresh != nil {
		consider(p.fresh)
	}
	for range p.cfg.Samples {
		p.rng ^= p.rng << 13
		p.rng ^= p.rng >> 7
		p.rng ^= p.rng << 17
		consider(p.cached[p.rng%uint64(len(p.cached))])
	}
	key := v.key
	p.drop(v)
	return key, true
}

// drop forgets n and recycles it.
func (p *Interval) drop(n *inode) {
	last := p.cached[len(p.cached)-1]
	p.cached[n.idx] = last
	last.idx = n.idx
	p.cached[len(p.cached)-1] = nil
	p.cached = p.cached[:len(p.cached)-1]
	delete(p.nodes, n.key)
	if p.fresh == n {
		p.fresh = nil
	}
	*n = inode{next: p.free}
	p.free = n
}

// score is what keeping n costs per byte it is expected to serve: the
// inverse of its hit density. The cache's yardstick is the byte hit
// ratio, and an object of twice the size serves twice the bytes per hit
// for twice the space, so sizes cancel out (a cache counting hits, not
// bytes, would multiply by the size).
func (p *Interval) score(n *inode) float64 {
	return 1 / p.density(n)
}

// density is the expected requests per second of n: the best, over the
// nearest k live viewers behind it, of the chance that one of them
// requests it over the time the k-th takes to get there, plus the rate
// of its other requests, estimated twice over: from its own and its
// title's recent counts in the sketch, and from the title's rate of new
// sessions times the share of sessions that request its position.
func (p *Interval) density(n *inode) float64 {
	t, seg := n.title, n.seg
	tr := &p.track
	now := tr.now
	best := 0.0
	if seg >= 0 && len(t.viewers) > 0 {
		// A viewer is behind seg while its virtual start is after that
		// of a viewer requesting seg now.
		at := now - float64(seg)*p.dt
		vs := t.viewers
		i := sort.Search(len(vs), func(i int) bool { return vs[i].start > at })
		miss := 1.0
		for k := 0; i < len(vs) && k < p.cfg.Trailing; i++ {
			w := vs[i]
			if w.last < now-tr.idle {
				continue
			}
			k++
			miss *= 1 - tr.reach(w.seg, seg)
			wait := max(w.start+float64(seg)*p.dt-now, p.dt)
			best = max(best, (1-miss)/wait)
		}
	}
	return best + p.sketch.Popularity(n.key)/p.sketchWindow() + 1/tr.fromNew(t, seg)
}

// neverSeconds is the expected wait of an object no viewer is predicted to
// request: a year, in seconds.
const neverSeconds = 365 * 24 * 3600.0

// sketchWindow is the time, in seconds, over which the sketch's estimates
// count requests: its sample window at the recent request rate, one and
// a half times over (the halved windows before it).
func (p *Interval) sketchWindow() float64 {
	return 1.5 * float64(p.sketch.window) / max(p.track.rate(), 1e-9)
}
