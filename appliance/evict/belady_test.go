package evict

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// unitTrace turns "abcab" into requests of one byte each.
func unitTrace(s string) []Request {
	tr := make([]Request, len(s))
	for i, c := range s {
		tr[i] = Request{Key: string(c), Size: 1}
	}
	return tr
}

func TestBeladyHits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		trace    string
		capacity int64
		want     int64 // hits
	}{
		// Classic textbook string: MIN takes 5 hits of 12 with 3 frames
		// (7 faults); LRU takes 2.
		{"textbook", "abcdabeabcde", 3, 5},
		{"cycle larger than cache bypasses the farthest", "abcabcabc", 2, 4},
		{"everything fits", "abcabc", 3, 3},
		{"no reuse", "abcdef", 2, 0},
		{"one frame", "aabba", 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := unitTrace(tt.trace)
			got := Replay(NewBelady(tr), tt.capacity, tr).Hits
			if got != tt.want {
				t.Errorf("hits = %d, want %d", got, tt.want)
			}
		})
	}
}

// optimalHits finds by exhaustive search the most hits any policy gets on
// a trace of unit-size objects with a cache of capacity objects, where a
// miss may also bypass the cache.
func optimalHits(tr []Request, capacity int, i int, cache map[string]bool) int64 {
	if i == len(tr) {
		return 0
	}
	k := tr[i].Key
	if cache[k] {
		return 1 + optimalHits(tr, capacity, i+1, cache)
	}
	best := optimalHits(tr, capacity, i+1, cache) // bypass
	if len(cache) < capacity {
		cache[k] = true
		best = max(best, optimalHits(tr, capacity, i+1, cache))
		delete(cache, k)
		return best
	}
	var keys []string
	for c := range cache {
		keys = append(keys, c)
	}
	for _, c := range keys {
		delete(cache, c)
		cache[k] = true
		best = max(best, optimalHits(tr, capacity, i+1, cache))
		delete(cache, k)
		cache[c] = true
	}
	return best
}

// TestBeladyIsOptimalForUnitSizes checks MIN against exhaustive search on
// short random traces of equal-size objects.
func TestBeladyIsOptimalForUnitSizes(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 12))
	for seed := range 200 {
		n := 4 + r.IntN(9)
		keys := 2 + r.IntN(4)
		capacity := 1 + r.IntN(3)
		var sb strings.Builder
		for range n {
			sb.WriteByte(byte('a' + r.IntN(keys)))
		}
		tr := unitTrace(sb.String())
		got := Replay(NewBelady(tr), int64(capacity), tr).Hits
		want := optimalHits(tr, capacity, 0, map[string]bool{})
		if got != want {
			t.Fatalf("case %d: trace %q capacity %d: Belady hits %d, optimum %d", seed, sb.String(), capacity, got, want)
		}
	}
}

// zipfTrace draws n requests over keys objects with Zipf-like popularity;
// sizes are one byte when unit, else fixed per key between 1 and 100.
func zipfTrace(seed uint64, n, keys int, unit bool) []Request {
	r := rand.New(rand.NewPCG(seed, 99))
	z := rand.NewZipf(r, 1.1, 1, uint64(keys-1))
	tr := make([]Request, n)
	for i := range tr {
		k := int(z.Uint64())
		if r.IntN(4) == 0 { // some uniform noise: one-hit wonders
			k = r.IntN(keys * 4)
		}
		size := int64(1)
		if !unit {
			size = 1 + int64(k*7919%100)
		}
		tr[i] = Request{Key: fmt.Sprint(k), Size: size}
	}
	return tr
}

func TestBeladyNeverWorseThanOnlinePolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		unit bool
	}{
		{"unit sizes", true},
		{"variable sizes", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for seed := range uint64(15) {
				tr := zipfTrace(seed, 3000, 400, tt.unit)
				var total int64
				for _, q := range tr {
					total += q.Size
				}
				for _, frac := range []int64{50, 20, 5} {
					capacity := total / 3000 * 400 / frac
					bel := Replay(NewBelady(tr), capacity, tr).ByteHitRatio()
					lru := Replay(NewLRU(), capacity, tr).ByteHitRatio()
					s3 := Replay(NewS3FIFO(capacity, 0.1), capacity, tr).ByteHitRatio()
					if bel < lru || bel < s3 {
						t.Errorf("seed %d capacity %d: byte hit ratio Belady %.4f < LRU %.4f or S3-FIFO %.4f", seed, capacity, bel, lru, s3)
					}
				}
			}
		})
	}
}

func TestBeladyRemoveAndUnknownKeys(t *testing.T) {
	t.Parallel()
	tr := unitTrace("abab")
	b := NewBelady(tr)
	b.Insert("a", 1)
	b.Insert("b", 1)
	b.Insert("zz", 1) // not in the trace: never needed again
	if got, ok := b.Victim(); !ok || got != "zz" {
		t.Errorf("Victim() = %q, %v; want zz", got, ok)
	}
	b.Remove("a")
	b.Access("a") // unknown now: ignored
	if got, ok := b.Victim(); !ok || got != "b" {
		t.Errorf("Victim() = %q, %v; want b", got, ok)
	}
	if got, ok := b.Victim(); ok {
		t.Errorf("Victim() on empty = %q, want none", got)
	}
}

func BenchmarkBelady(b *testing.B) {
	tr := zipfTrace(1, 100_000, 5000, false)
	b.ReportAllocs()
	for b.Loop() {
		Replay(NewBelady(tr), 20_000, tr)
	}
}
