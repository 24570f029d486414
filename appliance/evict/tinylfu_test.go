package evict

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// checked wraps a policy under Replay to check its side of the contract
// on every call: a victim is a key the cache holds, named once, and the
// policy runs out of victims only when the cache is empty. It records
// which requests hit (Replay calls Access for a hit, Insert for a miss).
type checked struct {
	Policy
	t    *testing.T
	held map[string]int64
	used int64
	hits []bool
}

func (c *checked) Insert(key string, size int64) {
	c.hits = append(c.hits, false)
	c.held[key] = size
	c.used += size
	c.Policy.Insert(key, size)
}

func (c *checked) Access(key string) {
	c.hits = append(c.hits, true)
	c.Policy.Access(key)
}

func (c *checked) Victim() (string, bool) {
	k, ok := c.Policy.Victim()
	size, held := c.held[k]
	switch {
	case !ok && len(c.held) > 0:
		c.t.Fatalf("request %d: no victim with %d objects, %d bytes held", len(c.hits), len(c.held), c.used)
	case ok && !held:
		c.t.Fatalf("request %d: victim %q is not in the cache", len(c.hits), k)
	}
	delete(c.held, k)
	c.used -= size
	return k, ok
}

// checkedReplay replays trace through p with the checks of checked, then
// drains p, and returns the result and whether each request hit.
func checkedReplay(t *testing.T, p Policy, capacity int64, trace []Request) (Result, []bool) {
	t.Helper()
	c := &checked{Policy: p, t: t, held: map[string]int64{}}
	r := Replay(c, capacity, trace)
	if c.used > capacity {
		t.Fatalf("replay ended with %d of %d bytes used", c.used, capacity)
	}
	for len(c.held) > 0 {
		c.Victim()
	}
	if k, ok := p.Victim(); ok {
		t.Fatalf("empty policy named victim %q", k)
	}
	return r, c.hits
}

func TestTinyLFUKeepsBudget(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var trace []Request
	for range 20_000 {
		title := int(r.ExpFloat64() * 10)
		seg := r.IntN(40)
		trace = append(trace, Request{Key: fmt.Sprintf("t%d/seg-%d", title, seg), Size: int64(50 + 7*title + seg)})
	}
	for _, capacity := range []int64{100, 2_000, 20_000, 200_000} {
		res, _ := checkedReplay(t, NewTinyLFU(capacity, nil), capacity, trace)
		if capacity >= 2_000 && res.Hits == 0 {
			t.Errorf("capacity %d: no hits: %+v", capacity, res)
		}
	}
}

func TestTinyLFUResistsScans(t *testing.T) {
	t.Parallel()
	trace := scanTrace(7)
	const capacity = 60 * 100
	tiny := Replay(NewTinyLFU(capacity, nil), capacity, trace)
	lru := Replay(NewLRU(), capacity, trace)
	t.Logf("byte hit ratio: TinyLFU %.3f, LRU %.3f", tiny.ByteHitRatio(), lru.ByteHitRatio())
	// Two thirds of the requests go to the hot set (see TestS3FIFOResistsScans).
	if tiny.ByteHitRatio() < 0.6 {
		t.Errorf("TinyLFU byte hit ratio %.3f, want >= 0.6", tiny.ByteHitRatio())
	}
	if tiny.ByteHitRatio() <= lru.ByteHitRatio() {
		t.Errorf("TinyLFU %.3f not better than LRU %.3f on a scan", tiny.ByteHitRatio(), lru.ByteHitRatio())
	}
}

// releaseTrace is a catalog watched steadily, then a new title released:
// from then on, a session of the new title starts every eight steps and
// watches its first 30 segments in order, one a step, while the catalog's
// viewers go on. session[i] is the new title's session that made request
// i (counting from 1), or 0 for the catalog's.
func releaseTrace(seed uint64) (trace []Request, session []int) {
	r := rand.New(rand.NewPCG(seed, 3))
	old := func() {
		title := min(int(r.ExpFloat64()*6), 39)
		trace = append(trace, Request{Key: fmt.Sprintf("old%d/seg-%d", title, r.IntN(30)), Size: 10})
		session = append(session, 0)
	}
	for range 20_000 {
		old()
	}
	var pos []int // of each new session
	for step := range 400 {
		if step%8 == 0 {
			pos = append(pos, 0)
		}
		for i := range pos {
			if pos[i] < 30 {
				trace = append(trace, Request{Key: fmt.Sprintf("new/seg-%d", pos[i]), Size: 10})
				session = append(session, i+1)
				pos[i]++
			}
		}
		old()
		old()
	}
	return trace, session
}

// TestTinyLFUAdmitsNewRelease: a new title that draws more viewers than
// any of the catalog gets into a cache full of the catalog within a few of
// its fifty sessions: from the ninth on they are served from the cache.
// (Counts alone, without the young-title scaling of Sketch.TitleMean, need
// about thirty.)
func TestTinyLFUAdmitsNewRelease(t *testing.T) {
	t.Parallel()
	trace, session := releaseTrace(5)
	const capacity = 200 * 10 // 200 of the catalog's 1,200 segments
	_, hits := checkedReplay(t, NewTinyLFU(capacity, nil), capacity, trace)
	var reqs, hit int
	for i, s := range session {
		if s > 8 { // after the first eight sessions
			reqs++
			if hits[i] {
				hit++
			}
		}
	}
	t.Logf("new title: %d of %d requests of sessions 9 on hit", hit, reqs)
	if got := float64(hit) / float64(reqs); got < 0.9 {
		t.Errorf("hit ratio of the new title's later sessions %.3f, want >= 0.9", got)
	}
}

func TestTinyLFURemove(t *testing.T) {
	t.Parallel()
	p := NewTinyLFU(1000, nil) // a window of 20 bytes
	for i := range 10 {
		p.Insert(fmt.Sprintf("t/%d", i), 10)
	}
	// The first Victim moves the window's oldest eight to the main area
	// and names one of them.
	first, ok := p.Victim()
	if !ok || first == "t/8" || first == "t/9" {
		t.Fatalf("first Victim() = %q, %v; want one of t/0 to t/7", first, ok)
	}
	inMain := "t/0"
	if first == inMain {
		inMain = "t/1"
	}
	p.Remove(inMain)
	p.Remove("t/9") // in the window
	p.Remove("t/9") // twice: a no-op
	p.Remove("nope")
	got := map[string]bool{first: true}
	for {
		k, ok := p.Victim()
		if !ok {
			break
		}
		if got[k] {
			t.Fatalf("victim %q named twice", k)
		}
		got[k] = true
	}
	if len(got) != 8 || got[inMain] || got["t/9"] {
		t.Errorf("victims %v, want all of t/0 to t/8 but %s", got, inMain)
	}
	p.Insert("t/9", 10) // a removed key can come back
	if k, ok := p.Victim(); !ok || k != "t/9" {
		t.Errorf("Victim() = %q, %v; want t/9", k, ok)
	}
}

func TestTinyLFUAllocs(t *testing.T) {
	const objects = 1000
	keys := make([]string, 4*objects)
	for i := range keys {
		keys[i] = fmt.Sprintf("t%d/seg-%d", i%37, i)
	}
	p := NewTinyLFU(objects*100, nil)
	// Steady state: full, every Insert pays for itself with Victims.
	insert := func(i int) {
		p.Insert(keys[i%len(keys)], 100)
		for p.window.bytes+p.mainBytes > objects*100 {
			p.Victim()
		}
	}
	for i := range 3 * len(keys) {
		insert(i)
	}
	held := keys[len(keys)-1]
	if n := testing.AllocsPerRun(1000, func() { p.Access(held) }); n != 0 {
		t.Errorf("Access: %v allocs, want 0", n)
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() { insert(i); i++ }); n != 0 {
		t.Errorf("Insert and Victim at steady state: %v allocs, want 0", n)
	}
}
