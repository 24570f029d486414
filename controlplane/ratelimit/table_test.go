package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// t0 is the tests' start time; tests drive time through the now argument.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// step is one Take of a table test and what it should answer.
type step struct {
	key   string
	n     int
	at    time.Duration
	ok    bool
	retry time.Duration
}

func runSteps(t *testing.T, tb *Table, steps []step) {
	t.Helper()
	for i, s := range steps {
		_, retry, ok := tb.Take(s.key, s.n, at(s.at))
		if ok != s.ok || retry != s.retry {
			t.Errorf("step %d: Take(%q, %d, t0+%v) = %v, %v; want %v, %v", i, s.key, s.n, s.at, retry, ok, s.retry, s.ok)
		}
	}
}

func TestTableTake(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lim   Limit
		steps []step
	}{
		{"burst then refill", Limit{1, 2}, []step{
			{"a", 1, 0, true, 0},
			{"a", 1, 0, true, 0},
			{"a", 1, 0, false, time.Second},
			{"b", 1, 0, true, 0}, // keys are apart
			{"a", 1, 500 * time.Millisecond, false, time.Second},
			{"a", 1, time.Second, true, 0},
			{"a", 1, time.Second, false, time.Second},
			{"a", 2, 3 * time.Second, true, 0},
		}},
		{"several at a time", Limit{2, 10}, []step{
			{"a", 8, 0, true, 0},
			{"a", 3, 0, false, time.Second},
			{"a", 2, 0, true, 0},
			{"a", 10, 0, false, 5 * time.Second},
			{"a", 10, 4 * time.Second, false, time.Second},
			{"a", 10, 5 * time.Second, true, 0},
		}},
		{"retry rounds up", Limit{1.0 / 2.5, 1}, []step{
			{"a", 1, 0, true, 0},
			{"a", 1, 0, false, 3 * time.Second},
			{"a", 1, 2 * time.Second, false, time.Second},
		}},
		{"more than the burst never", Limit{1, 2}, []step{
			{"a", 3, 0, false, 0},
			{"a", 2, 0, true, 0},
		}},
		{"nothing is free", Limit{1, 1}, []step{
			{"a", 1, 0, true, 0},
			{"a", 0, 0, true, 0},
		}},
		{"blocked", Limit{}, []step{
			{"a", 1, 0, false, BlockedRetryAfter},
		}},
		{"unlimited", Limit{-1, 0}, []step{
			{"a", 1000, 0, true, 0},
			{"a", 1000, 0, true, 0},
		}},
		{"invalid fails closed", Limit{5, 0}, []step{
			{"a", 1, 0, false, BlockedRetryAfter},
		}},
		{"slowest rate", Limit{MinPerSecond, 1}, []step{
			{"a", 1, 0, true, 0},
			{"a", 1, 0, false, time.Hour},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, NewTable(tc.lim, 0), tc.steps)
		})
	}
}

func TestTableGiveBack(t *testing.T) {
	tb := NewTable(Limit{1, 3}, 0)
	give, _, ok := tb.Take("a", 2, t0)
	if !ok {
		t.Fatal("first Take refused")
	}
	give()
	give() // a second call gives nothing more
	runSteps(t, tb, []step{
		{"a", 3, 0, true, 0},
		{"a", 1, 0, false, time.Second},
	})

	// A refused Take has nothing to give back.
	if give, _, ok := tb.Take("a", 1, t0); ok || give != nil {
		t.Errorf("refused Take = %v, %p; want false, nil", ok, give)
	}
	// Unlimited takes give back nothing, safely.
	give, _, ok = NewTable(Limit{-1, 0}, 0).Take("a", 1, t0)
	if !ok || give == nil {
		t.Fatalf("unlimited Take = %v, %p; want true and a giveBack", ok, give)
	}
	give()
}

func TestTableGiveBackLate(t *testing.T) {
	// Limit{1, 20}: "a" takes 5 at t0 and gives them back after what
	// each case does in between.
	for _, tc := range []struct {
		name    string
		between []step
		to      Limit // a limit set in between, if any
		after   []step
	}{
		{"nothing in between", nil, Limit{}, []step{
			{"a", 20, 0, true, 0},
		}},
		{"nothing in between, counted later", nil, Limit{}, []step{
			{"a", 20, 3 * time.Second, true, 0},
			{"a", 1, 3 * time.Second, false, time.Second},
		}},
		{"a take soon after", []step{{"a", 15, 4 * time.Second, true, 0}}, Limit{}, []step{
			{"a", 9, 4 * time.Second, true, 0},
			{"a", 1, 4 * time.Second, false, time.Second},
		}},
		{"a take long after: none back", []step{{"a", 1, 6 * time.Second, true, 0}}, Limit{}, []step{
			{"a", 19, 6 * time.Second, true, 0},
			{"a", 1, 6 * time.Second, false, time.Second},
		}},
		{"a new limit: none back", []step{{"a", 21, 2 * time.Second, false, 4 * time.Second}}, Limit{1, 30}, []step{
			{"a", 17, 2 * time.Second, true, 0},
			{"a", 1, 2 * time.Second, false, time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable(Limit{1, 20}, 0)
			give, _, ok := tb.Take("a", 5, t0)
			if !ok {
				t.Fatal("first Take refused")
			}
			if tc.to != (Limit{}) {
				tb.SetLimit(tc.to)
			}
			runSteps(t, tb, tc.between)
			give()
			runSteps(t, tb, tc.after)
		})
	}
}

func TestTableTimeGoesBack(t *testing.T) {
	// Requests of one key from several goroutines arrive slightly out
	// of order: one with an earlier time counts at the latest, and the
	// time in between is not earned twice.
	runSteps(t, NewTable(Limit{1, 2}, 0), []step{
		{"a", 1, 10 * time.Second, true, 0},
		{"a", 1, 5 * time.Second, true, 0},
		{"a", 1, 10 * time.Second, false, time.Second},
		{"a", 1, 11 * time.Second, true, 0},
	})
}

func TestTableSetLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start []step
		to    Limit
		after []step
	}{
		{"lower burst caps saved tokens", []step{{"a", 1, 0, true, 0}}, Limit{1, 4}, []step{
			{"a", 4, 0, true, 0},
			{"a", 1, 0, false, time.Second},
		}},
		{"higher burst keeps tokens", []step{{"a", 10, 0, true, 0}}, Limit{1, 20}, []step{
			{"a", 1, 0, false, time.Second},
			{"a", 3, 3 * time.Second, true, 0},
			{"a", 1, 3 * time.Second, false, time.Second},
		}},
		{"higher rate", []step{{"a", 10, 0, true, 0}}, Limit{10, 10}, []step{
			{"a", 1, 0, false, time.Second},
			{"a", 10, time.Second, true, 0},
		}},
		{"lower rate", []step{{"a", 10, 0, true, 0}}, Limit{0.1, 10}, []step{
			{"a", 1, 0, false, 10 * time.Second},
			{"a", 1, 10 * time.Second, true, 0},
		}},
		{"blocked", []step{{"a", 1, 0, true, 0}}, Limit{}, []step{
			{"a", 1, 0, false, BlockedRetryAfter},
			{"b", 1, 0, false, BlockedRetryAfter},
		}},
		{"unlimited", []step{{"a", 10, 0, true, 0}}, Limit{-1, 0}, []step{
			{"a", 100, 0, true, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable(Limit{1, 10}, 0)
			runSteps(t, tb, tc.start)
			tb.SetLimit(tc.to)
			if got := tb.Limit(); got != tc.to {
				t.Errorf("Limit() = %v, want %v", got, tc.to)
			}
			runSteps(t, tb, tc.after)
		})
	}

	t.Run("back from unlimited starts full", func(t *testing.T) {
		tb := NewTable(Limit{1, 2}, 0)
		runSteps(t, tb, []step{{"a", 2, 0, true, 0}})
		tb.SetLimit(Limit{-1, 0})
		if n := tb.Len(); n != 0 {
			t.Errorf("Len() after unlimited = %d, want 0", n)
		}
		tb.SetLimit(Limit{1, 2})
		runSteps(t, tb, []step{{"a", 2, 0, true, 0}, {"a", 1, 0, false, time.Second}})
	})
}

// oneShard makes tb a single shard of max buckets, so that tests know
// which buckets meet.
func oneShard(tb *Table, max int) *Table {
	tb.shards = tb.shards[:1]
	tb.shards[0].max = max
	return tb
}

func TestTableSweep(t *testing.T) {
	t.Run("idle buckets go first", func(t *testing.T) {
		tb := oneShard(NewTable(Limit{1, 1}, 0), 8)
		for i := range 8 {
			tb.Take(fmt.Sprint("k", i), 1, t0)
		}
		// k0..k3 stay busy; k4..k7 are full again from t0+1s.
		for i := range 4 {
			tb.Take(fmt.Sprint("k", i), 1, at(time.Second))
		}
		tb.Take("new", 1, at(1500*time.Millisecond))
		if n := tb.Len(); n != 5 {
			t.Errorf("Len() = %d, want 5: the busy four and the new one", n)
		}
		for i := range 4 {
			if _, _, ok := tb.Take(fmt.Sprint("k", i), 1, at(1500*time.Millisecond)); ok {
				t.Errorf("k%d was forgotten: a busy bucket came back full", i)
			}
		}
	})
	t.Run("busy buckets make room too", func(t *testing.T) {
		tb := oneShard(NewTable(Limit{1, 1}, 0), 8)
		for i := range 100 {
			if _, _, ok := tb.Take(fmt.Sprint("k", i), 1, t0); !ok {
				t.Fatalf("k%d refused: a new key must get a bucket", i)
			}
			if n := tb.Len(); n > 8 {
				t.Fatalf("after %d keys Len() = %d, want at most 8", i+1, n)
			}
		}
	})
	for _, max := range []int{1, 5, 31, 32, 33, 100, 1000} {
		t.Run(fmt.Sprint("bound ", max), func(t *testing.T) {
			tb := NewTable(Limit{1, 1}, max)
			for i := range 20 * max {
				tb.Take(fmt.Sprint("k", i), 1, t0)
				if n := tb.Len(); n > max {
					t.Fatalf("after %d keys Len() = %d, want at most %d", i+1, n, max)
				}
			}
		})
	}
}

func TestTableConcurrent(t *testing.T) {
	// 8 goroutines take 100 tokens each from a burst of 500 and give some
	// back, with no time passing: what they kept and what is left make
	// the burst, exactly. The table has room for every key: a full shard
	// may forget a busy bucket, "shared" too, and then the sum is off.
	tb := NewTable(Limit{1, 500}, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	kept := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				give, _, ok := tb.Take("shared", 1, t0)
				if !ok {
					continue
				}
				if (g+i)%4 == 0 {
					give()
					continue
				}
				mu.Lock()
				kept++
				mu.Unlock()
			}
			tb.Take(fmt.Sprint("own", g), 1, t0)
		})
	}
	wg.Wait()
	left := 0
	for {
		if _, _, ok := tb.Take("shared", 1, t0); !ok {
			break
		}
		left++
	}
	if kept+left != 500 {
		t.Errorf("kept %d tokens and %d are left, want 500 in all", kept, left)
	}
}

func BenchmarkTableTake(b *testing.B) {
	tb := NewTable(Limit{MaxPerSecond, MaxBurst}, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		now := t0
		for pb.Next() {
			now = now.Add(time.Microsecond)
			tb.Take("account-1234", 1, now)
		}
	})
}
