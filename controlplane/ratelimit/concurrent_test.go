package ratelimit

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
)

// drain takes single tokens from tb's bucket of key until refused, and
// returns how many it took.
func drain(tb *Table, key string) int {
	n := 0
	for {
		if _, _, ok := tb.Take(key, 1, t0); !ok {
			return n
		}
		n++
	}
}

func TestAllowConcurrentExact(t *testing.T) {
	// No time passes: whatever the interleaving, what was allowed and
	// what is left in each bucket make its burst exactly, which holds
	// only if a refused request takes from none of its buckets and no
	// request takes a token that another checked and then counted on.
	l, err := New(Config{Classes: map[Class]Limit{ClassViewer: {MinPerSecond, 100}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetRules([]Rule{{ID: "search", Route: "search", Limit: Limit{MinPerSecond, 30}}}); err != nil {
		t.Fatal(err)
	}
	var search, all atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				route := "titles"
				if (g+i)%2 == 0 {
					route = "search"
				}
				if _, ok := l.Allow(route, viewerA, netip.Addr{}, t0); ok {
					all.Add(1)
					if route == "search" {
						search.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	key := "0" + viewerA.ID // the class index, then the id
	if left := drain(l.classes[0], key); int(all.Load())+left != 100 {
		t.Errorf("class: %d allowed and %d left, want 100 in all", all.Load(), left)
	}
	if left := drain(l.rules.Load().byID["search"].t, key); int(search.Load())+left != 30 {
		t.Errorf("rule: %d allowed and %d left, want 30 in all", search.Load(), left)
	}
}

func TestAllowConcurrentChanges(t *testing.T) {
	// Requests race with rule and class changes; -race checks the rest.
	l := newTestLimiter(t)
	start := time.Now()
	var wg sync.WaitGroup
	var stop atomic.Bool
	for g := range 4 {
		wg.Go(func() {
			ps := []auth.Principal{viewerA, viewerB, keyA, appliance, anonymous, node}
			for i := 0; !stop.Load(); i++ {
				addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
				l.Allow([]string{"search", "titles", "play"}[i%3], ps[(g+i)%len(ps)], addr, start.Add(time.Duration(i)*time.Millisecond))
			}
		})
	}
	for i := range 200 {
		rules := []Rule{
			{ID: "a", Route: "search", Limit: Limit{float64(1 + i%3), 2}},
			{ID: fmt.Sprint("b", i%4), Class: ClassAnonymous, Limit: Limit{1, 1}},
		}
		if i%5 == 0 {
			rules = append(rules, Rule{ID: "block", Route: "play", Limit: Limit{}})
		}
		if err := l.SetRules(rules); err != nil {
			t.Fatal(err)
		}
		if err := l.SetClass(ClassViewer, Limit{float64(1 + i%7), 1 + i%5}); err != nil {
			t.Fatal(err)
		}
		_ = l.Rules()
	}
	stop.Store(true)
	wg.Wait()
}

func TestAllowLockOrder(t *testing.T) {
	// A request locks its tables' shards together, the class's first and
	// then its rules' in seq order, whatever order the rule set gives
	// them: two requests holding rule sets that order x and y apart
	// would otherwise each hold one and wait for the other. One shard a
	// table makes a viewer and an operator meet on every table.
	l, err := New(Config{Classes: testLimits(), MaxKeys: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	x, y := Rule{ID: "x", Limit: Limit{1000, 1000}}, Rule{ID: "y", Limit: Limit{1000, 1000}}
	var wg sync.WaitGroup
	var stop atomic.Bool
	for g := range 4 {
		wg.Go(func() {
			p := []auth.Principal{viewerA, keyA}[g%2]
			for !stop.Load() {
				l.Allow("titles", p, netip.Addr{}, t0)
			}
		})
	}
	for i := range 20000 {
		rules := []Rule{x, y}
		if i%2 == 1 {
			rules = []Rule{y, x}
		}
		if err := l.SetRules(rules); err != nil {
			t.Fatal(err)
		}
		for ci, es := range l.rules.Load().byClass {
			if len(es) != 2 || es[0].seq >= es[1].seq {
				var got []string
				for _, e := range es {
					got = append(got, fmt.Sprintf("%s (seq %d)", e.ID, e.seq))
				}
				t.Fatalf("after SetRules(%v) the rules of class %s are %v: want x and y in seq order", rules, classes[ci], got)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
}

// benchLimiter returns a limiter that never refuses within a benchmark,
// with rules.
func benchLimiter(b *testing.B, rules ...Rule) *Limiter {
	huge := Limit{MaxPerSecond, MaxBurst}
	l, err := New(Config{Classes: map[Class]Limit{ClassViewer: huge, ClassAPIKey: huge, ClassAppliance: huge, ClassAnonymous: huge}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := l.SetRules(rules); err != nil {
		b.Fatal(err)
	}
	return l
}

func BenchmarkAllow(b *testing.B) {
	huge := Limit{MaxPerSecond, MaxBurst}
	threeRules := []Rule{
		{ID: "search", Route: "search", Limit: huge},
		{ID: "viewers", Class: ClassViewer, Limit: huge},
		{ID: "play", Route: "play", Limit: huge},
	}
	v6 := netip.MustParseAddr("2001:db8:1:2::1")
	for _, bc := range []struct {
		name  string
		rules []Rule
		p     auth.Principal
		addr  netip.Addr
	}{
		{"viewer", nil, viewerA, netip.Addr{}},
		{"anonymous-v6", nil, anonymous, v6},
		{"viewer-3rules", threeRules, viewerA, netip.Addr{}},
		{"node", nil, node, netip.Addr{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := benchLimiter(b, bc.rules...)
			now := t0
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Microsecond)
				if _, ok := l.Allow("search", bc.p, bc.addr, now); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
	b.Run("refused", func(b *testing.B) {
		l := benchLimiter(b, Rule{ID: "search", Route: "search", Limit: Limit{MinPerSecond, 1}})
		l.Allow("search", viewerA, netip.Addr{}, t0)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := l.Allow("search", viewerA, netip.Addr{}, t0); ok {
				b.Fatal("allowed")
			}
		}
	})
	b.Run("parallel-many-keys", func(b *testing.B) {
		l := benchLimiter(b)
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			g := next.Add(1)
			ps := make([]auth.Principal, 1000)
			for i := range ps {
				ps[i] = auth.Principal{Kind: auth.Viewer, ID: fmt.Sprintf("acct-%d-%d", g, i)}
			}
			now := t0
			for i := 0; pb.Next(); i++ {
				now = now.Add(time.Microsecond)
				l.Allow("titles", ps[i%len(ps)], netip.Addr{}, now)
			}
		})
	})
	b.Run("parallel-one-key", func(b *testing.B) {
		l := benchLimiter(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			now := t0
			for pb.Next() {
				now = now.Add(time.Microsecond)
				l.Allow("titles", viewerA, netip.Addr{}, now)
			}
		})
	})
}
