package evict

// LRU evicts the least recently used object. It is the baseline policy.
type LRU struct {
	order list
	nodes map[string]*node
}

var _ Policy = (*LRU)(nil)

// NewLRU returns an empty LRU policy.
func NewLRU() *LRU {
	l := &LRU{nodes: map[string]*node{}}
	l.order.init()
	return l
}

// Insert implements Policy.
func (l *LRU) Insert(key string, size int64) {
	l.Remove(key)
	n := &node{key: key, size: size}
	l.nodes[key] = n
	l.order.pushFront(n)
}

// Access implements Policy.
func (l *LRU) Access(key string) {
	if n, ok := l.nodes[key]; ok {
		l.order.remove(n)
		l.order.pushFront(n)
	}
}

// Remove implements Policy.
func (l *LRU) Remove(key string) {
	if n, ok := l.nodes[key]; ok {
		l.order.remove(n)
		delete(l.nodes, key)
	}
}

// Victim implements Policy.
func (l *LRU) Victim() (string, bool) {
	n := l.order.back()
	if n == nil {
		return "", false
	}
	l.order.remove(n)
	delete(l.nodes, n.key)
	return n.key, true
}
