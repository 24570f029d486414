package evict

const (
	// windowShare is the share of the capacity that admits every new
	// object for a short stay, to catch the reuse a frequency count cannot
	// predict yet (several viewers starting a title close together).
	windowShare = 0.02
	// samples is how many objects of the main area a victim is chosen
	// from: the least popular of a random sample (as in Redis's
	// approximated LFU), close to the true minimum at a fraction of the
	// cost of keeping the main area ordered on every hit.
	samples = 16
)

// TinyLFU is the disk tier's policy: a window-TinyLFU (Einziger et al.,
// ACM ToS 2017) over byte sizes whose frequency estimates are
// title-aware. See the package comment.
type TinyLFU struct {
	sketch    *Sketch
	nodes     map[string]*node
	window    list
	windowMax int64
	main      []*node
	mainBytes int64
	mainMax   int64
	free      *node  // recycled nodes, linked by next: at most the most ever held
	tick      uint64 // counts Inserts and Accesses
	rng       uint64 // xorshift state for sampling
}

var _ Policy = (*TinyLFU)(nil)

// NewTinyLFU returns a policy for a cache of capacity bytes that counts
// requests in s, which may be shared with other directories' policies
// and with the tier's placement. A nil s means a sketch of its own, of
// SketchKeys(capacity).
func NewTinyLFU(capacity int64, s *Sketch) *TinyLFU {
	if s == nil {
		s = NewSketch(SketchKeys(capacity))
	}
	window := int64(float64(capacity) * windowShare)
	p := &TinyLFU{
		sketch:    s,
		nodes:     map[string]*node{},
		windowMax: window,
		mainMax:   capacity - window,
		rng:       0x9e3779b97f4a7c15,
	}
	p.window.init()
	return p
}

// Insert implements Policy: a missed object enters the window.
func (p *TinyLFU) Insert(key string, size int64) {
	p.sketch.Touch(key)
	p.tick++
	p.Remove(key)
	n := p.free
	if n != nil {
		p.free = n.next
		n.next = nil
	} else {
		n = new(node)
	}
	n.key, n.size, n.last, n.inMain, n.freq = key, size, p.tick, false, 0
	p.nodes[key] = n
	p.window.pushFront(n)
}

// Access implements Policy.
func (p *TinyLFU) Access(key string) {
	p.sketch.Touch(key)
	p.tick++
	if n, ok := p.nodes[key]; ok {
		n.last = p.tick
		n.freq = 1 // in the window: requested again while on probation
	}
}

// Remove implements Policy.
func (p *TinyLFU) Remove(key string) {
	if n, ok := p.nodes[key]; ok {
		p.unlink(n)
		p.recycle(n)
	}
}

// Victim implements Policy. While the window is over its share, its
// oldest object is a candidate for the main area: it enters if it was
// requested again while in the window or is more popular than the main
// area's sampled victim (which then goes), and goes itself otherwise. A
// scan of objects requested once therefore only ever displaces window
// objects.
func (p *TinyLFU) Victim() (string, bool) {
	for p.window.len > 0 && (p.window.bytes > p.windowMax || len(p.main) == 0) {
		c := p.window.back()
		p.window.remove(c)
		if p.mainBytes+c.size <= p.mainMax {
			p.toMain(c)
			continue
		}
		if len(p.main) > 0 {
			v, vp := p.sample()
			if c.freq > 0 || before(v, vp, c, p.sketch.Popularity(c.key)) {
				p.unlinkMain(v)
				p.toMain(c)
				return p.evict(v), true
			}
		}
		return p.evict(c), true
	}
	if len(p.main) == 0 {
		return "", false
	}
	v, _ := p.sample()
	p.unlinkMain(v)
	return p.evict(v), true
}

// before reports whether a, of popularity pa, should be evicted before b,
// of popularity pb: it is less popular, or as popular and requested less
// recently.
func before(a *node, pa float64, b *node, pb float64) bool {
	if pa != pb {
		return pa < pb
	}
	return a.last < b.last
}

// sample returns the least popular of a random sample of the main area,
// and its popularity.
func (p *TinyLFU) sample() (*node, float64) {
	var v *node
	var vp float64
	for range samples {
		p.rng ^= p.rng << 13
		p.rng ^= p.rng >> 7
		p.rng ^= p.rng << 17
		n := p.main[p.rng%uint64(len(p.main))]
		if np := p.sketch.Popularity(n.key); v == nil || before(n, np, v, vp) {
			v, vp = n, np
		}
	}
	return v, vp
}

func (p *TinyLFU) toMain(n *node) {
	n.inMain = true
	n.idx = len(p.main)
	p.main = append(p.main, n)
	p.mainBytes += n.size
}

func (p *TinyLFU) unlinkMain(n *node) {
	last := p.main[len(p.main)-1]
	p.main[n.idx] = last
	last.idx = n.idx
	p.main[len(p.main)-1] = nil
	p.main = p.main[:len(p.main)-1]
	p.mainBytes -= n.size
}

func (p *TinyLFU) unlink(n *node) {
	if n.inMain {
		p.unlinkMain(n)
	} else {
		p.window.remove(n)
	}
}

// evict forgets n and returns its key.
func (p *TinyLFU) evict(n *node) string {
	key := n.key
	p.recycle(n)
	return key
}

func (p *TinyLFU) recycle(n *node) {
	delete(p.nodes, n.key)
	*n = node{next: p.free}
	p.free = n
}
