package evict

import "container/heap"

// never is the next-use position of an object the trace does not request
// again: farther than any real position.
const never = int(^uint(0) >> 1)

// Belady is Belady's offline policy (MIN): the victim is the cached object
// whose next request lies farthest in the future. It needs the whole trace
// in advance, so it is no policy for the disk tier; it is the yardstick
// the trace replayer measures S3-FIFO and LRU against.
//
// With objects of one size, MIN is optimal: no policy gets more hits on
// the trace. With variable sizes, the exact byte-hit optimum is NP-hard
// (a knapsack over time); evicting the farthest next use is the standard
// approximation used in cache studies, and it is what this policy does. It
// is near the optimum on video traces, where segments of a title have
// similar sizes, but a size-aware adversarial trace can beat it.
//
// A Belady must be replayed over exactly the trace it was built from:
// each Insert or Access of a key stands for the key's next request in the
// trace. Keys the trace does not hold are treated as never requested
// again. Not safe for concurrent use.
type Belady struct {
	future map[string]*requests
	heap   farthest
	items  map[string]*beladyItem
}

// requests are the positions of one key's requests in the trace, in
// order, and how many of them the replay has consumed.
type requests struct {
	pos  []int
	seen int
}

var _ Policy = (*Belady)(nil)

type beladyItem struct {
	key   string
	next  int // position of the next request, or never
	index int // in the heap
}

// NewBelady returns the policy for trace.
func NewBelady(trace []Request) *Belady {
	b := &Belady{
		future: make(map[string]*requests),
		items:  make(map[string]*beladyItem),
	}
	for i, q := range trace {
		r := b.future[q.Key]
		if r == nil {
			r = new(requests)
			b.future[q.Key] = r
		}
		r.pos = append(r.pos, i)
	}
	return b
}

// advance consumes the current request of key and returns the position
// of the one after it, or never.
func (b *Belady) advance(key string) int {
	r := b.future[key]
	if r == nil {
		return never
	}
	r.seen++
	if r.seen < len(r.pos) {
		return r.pos[r.seen]
	}
	return never
}

// Insert implements Policy: the request that missed is consumed.
func (b *Belady) Insert(key string, _ int64) {
	next := b.advance(key)
	if it, ok := b.items[key]; ok {
		it.next = next
		heap.Fix(&b.heap, it.index)
		return
	}
	it := &beladyItem{key: key, next: next}
	b.items[key] = it
	heap.Push(&b.heap, it)
}

// Access implements Policy: the request that hit is consumed.
func (b *Belady) Access(key string) {
	it, ok := b.items[key]
	if !ok {
		return
	}
	it.next = b.advance(key)
	heap.Fix(&b.heap, it.index)
}

// Remove implements Policy.
func (b *Belady) Remove(key string) {
	if it, ok := b.items[key]; ok {
		heap.Remove(&b.heap, it.index)
		delete(b.items, key)
	}
}

// Victim implements Policy.
func (b *Belady) Victim() (string, bool) {
	if len(b.heap) == 0 {
		return "", false
	}
	it := heap.Pop(&b.heap).(*beladyItem)
	delete(b.items, it.key)
	return it.key, true
}

// farthest is a max-heap of cached objects by next-use position. Objects
// never requested again tie; which of them goes first changes no hit.
type farthest []*beladyItem

func (h farthest) Len() int           { return len(h) }
func (h farthest) Less(i, j int) bool { return h[i].next > h[j].next }
func (h farthest) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *farthest) Push(x any) {
	it := x.(*beladyItem)
	it.index = len(*h)
	*h = append(*h, it)
}

func (h *farthest) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
