package evict

// maxFreq caps the hit counter: two bits, as in S3-FIFO.
const maxFreq = 3

// S3FIFO is a byte-sized S3-FIFO policy. See the package comment.
type S3FIFO struct {
	capacity   int64
	smallBytes int64 // target size of the small FIFO
	small      list
	main       list
	nodes      map[string]*node
	ghost      ghost
}

var _ Policy = (*S3FIFO)(nil)

// NewS3FIFO returns a policy for a cache of capacity bytes whose small FIFO
// holds smallRatio of them (0.1 in the paper; values outside (0,1) mean 0.1).
func NewS3FIFO(capacity int64, smallRatio float64) *S3FIFO {
	if smallRatio <= 0 || smallRatio >= 1 {
		smallRatio = 0.1
	}
	p := &S3FIFO{
		capacity:   capacity,
		smallBytes: int64(float64(capacity) * smallRatio),
		nodes:      map[string]*node{},
	}
	p.small.init()
	p.main.init()
	p.ghost.init()
	return p
}

// Insert implements Policy. A key remembered by the ghost list goes
// straight to the main FIFO.
func (p *S3FIFO) Insert(key string, size int64) {
	if n, ok := p.nodes[key]; ok {
		p.unlink(n)
	}
	n := &node{key: key, size: size}
	p.nodes[key] = n
	if p.ghost.remove(key) {
		n.inMain = true
		p.main.pushFront(n)
		return
	}
	p.small.pushFront(n)
}

// Access implements Policy.
func (p *S3FIFO) Access(key string) {
	if n, ok := p.nodes[key]; ok && n.freq < maxFreq {
		n.freq++
	}
}

// Remove implements Policy.
func (p *S3FIFO) Remove(key string) {
	if n, ok := p.nodes[key]; ok {
		p.unlink(n)
		delete(p.nodes, key)
	}
}

func (p *S3FIFO) unlink(n *node) {
	if n.inMain {
		p.main.remove(n)
	} else {
		p.small.remove(n)
	}
}

// Victim implements Policy.
func (p *S3FIFO) Victim() (string, bool) {
	for p.small.len > 0 || p.main.len > 0 {
		if p.small.len > 0 && (p.small.bytes >= p.smallBytes || p.main.len == 0) {
			n := p.small.back()
			p.small.remove(n)
			if n.freq > 0 {
				// Requested again while on probation: promote.
				n.freq = 0
				n.inMain = true
				p.main.pushFront(n)
				continue
			}
			delete(p.nodes, n.key)
			p.ghost.add(n.key, p.main.len+p.small.len)
			return n.key, true
		}
		n := p.main.back()
		p.main.remove(n)
		if n.freq > 0 {
			n.freq--
			p.main.pushFront(n)
			continue
		}
		delete(p.nodes, n.key)
		return n.key, true
	}
	return "", false
}

// ghost is a bounded FIFO of keys recently evicted from the small queue.
type ghost struct {
	keys  map[string]*node
	order list
}

func (g *ghost) init() {
	g.keys = map[string]*node{}
	g.order.init()
}

// add remembers key, keeping at most max(limit, 64) keys.
func (g *ghost) add(key string, limit int) {
	if _, ok := g.keys[key]; ok {
		return
	}
	n := &node{key: key}
	g.keys[key] = n
	g.order.pushFront(n)
	for g.order.len > max(limit, 64) {
		old := g.order.back()
		g.order.remove(old)
		delete(g.keys, old.key)
	}
}

func (g *ghost) remove(key string) bool {
	n, ok := g.keys[key]
	if ok {
		g.order.remove(n)
		delete(g.keys, key)
	}
	return ok
}
