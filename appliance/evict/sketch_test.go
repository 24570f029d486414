package evict

import (
	"fmt"
	"sync"
	"testing"
)

func TestSketchNeverUnderCounts(t *testing.T) {
	t.Parallel()
	s := NewSketch(4000)
	want := map[string]uint32{}
	// 2,000 keys, key i requested i%7+1 times: 8,000 Touches, well inside
	// the first window.
	for round := range 7 {
		for i := range 2000 {
			if i%7 >= round {
				k := fmt.Sprintf("t%d/seg-%d", i%50, i)
				s.Touch(k)
				want[k]++
			}
		}
	}
	over := 0
	for k, n := range want {
		got := s.Estimate(k)
		if got < n {
			t.Fatalf("Estimate(%q) = %d, want >= %d", k, got, n)
		}
		if got > n {
			over++
		}
	}
	// Four rows of 4,096 counters for 2,000 keys: collisions happen, but
	// conservative update keeps most estimates exact.
	if over > len(want)/4 {
		t.Errorf("%d of %d estimates over-count, want at most a quarter", over, len(want))
	}
	if got := s.Estimate("never/requested"); got > 7 {
		t.Errorf("Estimate of an unseen key = %d, want at most the largest count 7", got)
	}
}

func TestSketchSaturates(t *testing.T) {
	t.Parallel()
	s := NewSketch(0)
	for range 300 {
		s.Touch("hot")
	}
	if got := s.Estimate("hot"); got != counterMax {
		t.Errorf("Estimate after 300 Touches = %d, want the cap %d", got, counterMax)
	}
}

func TestSketchHalving(t *testing.T) {
	t.Parallel()
	s := NewSketch(0) // sized for 256 keys: halving every 1,280 Touches
	for range 100 {
		s.Touch("t1/hot")
	}
	fill := func(n int, prefix string) {
		for i := range n {
			s.Touch(fmt.Sprintf("%s/%d", prefix, i))
		}
	}
	fill(int(s.window)-100-1, "a")
	if got := s.Estimate("t1/hot"); got < 100 {
		t.Fatalf("Estimate before the window ends = %d, want >= 100", got)
	}
	fill(1, "b") // the window's last Touch halves
	if got := s.Estimate("t1/hot"); got < 50 || got > 60 {
		t.Errorf("Estimate after one halving = %d, want 50 (a little more for collisions)", got)
	}
	fill(int(s.window), "c")
	if got := s.Estimate("t1/hot"); got < 25 || got > 32 {
		t.Errorf("Estimate after two halvings = %d, want 25", got)
	}
}

func TestSketchTitles(t *testing.T) {
	t.Parallel()
	s := NewSketch(0)
	// Title "pop": 10 segments requested 6 times each; title "rare": 30
	// segments requested once.
	for range 6 {
		for i := range 10 {
			s.Touch(fmt.Sprintf("pop/seg-%d", i))
		}
	}
	for i := range 30 {
		s.Touch(fmt.Sprintf("rare/seg-%d", i))
	}
	// Both titles are young: pop's five viewers beyond the first count 16
	// times over, rare's one viewer is not scaled.
	tests := []struct {
		key      string
		min, max float64
	}{
		{"pop/seg-99", 81, 82}, // a segment never requested: its title's mean
		{"rare/seg-0", 1, 1.2},
		{"unknown/seg-0", 0, 0.5},
	}
	for _, tt := range tests {
		if got := s.TitleMean(tt.key); got < tt.min || got > tt.max {
			t.Errorf("TitleMean(%q) = %.2f, want in [%v, %v]", tt.key, got, tt.min, tt.max)
		}
	}
	if got, want := s.Popularity("pop/seg-0"), 87.0; got < want {
		t.Errorf("Popularity(pop/seg-0) = %.2f, want >= %v (6 requests + a title mean of 81)", got, want)
	}
	if s.Popularity("pop/seg-99") <= s.Popularity("rare/seg-0") {
		t.Errorf("an unrequested segment of a popular title (%.2f) should rank above a requested segment of a rare one (%.2f)",
			s.Popularity("pop/seg-99"), s.Popularity("rare/seg-0"))
	}
	// Once pop is as old as the title memory (with its counts halved
	// once by then), its mean is its own again.
	for i := range titleWindows * int(s.window) {
		s.Touch(fmt.Sprintf("filler%d/%d", i%64, i))
	}
	if got := s.TitleMean("pop/seg-0"); got < 6 || got > 6.5 {
		t.Errorf("TitleMean of an old title = %.2f, want its mean 6 (counts halved alike)", got)
	}
}

// A title of one key requested without pause keeps its key counted, so
// no request of it is fresh after a title halving: its mean must not fall
// to zero then.
func TestSketchTitleHalvingKeepsMean(t *testing.T) {
	t.Parallel()
	s := NewSketch(256)
	for range s.window * titleWindows {
		s.Touch("hit/only")
	}
	if m := s.TitleMean("hit/only"); m < 1000 {
		t.Fatalf("mean after title halving = %v, want the key's ~5,000 requests", m)
	}
}

func TestSketchConcurrent(t *testing.T) {
	t.Parallel()
	s := NewSketch(2000)
	const workers, perKey, keys = 4, 40, 50 // 8,000 Touches of own keys, inside the 10,000 of a window
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range perKey {
				for k := range keys {
					s.Touch(fmt.Sprintf("w%d/%d", w, k))
					s.Estimate("shared/x")
				}
			}
		})
	}
	wg.Wait()
	// Keys of one worker are touched by it alone: no increment may be
	// lost to the others' compare-and-swaps on shared words.
	for w := range workers {
		for k := range keys {
			if got := s.Estimate(fmt.Sprintf("w%d/%d", w, k)); got < perKey {
				t.Fatalf("Estimate(w%d/%d) = %d, want >= %d", w, k, got, perKey)
			}
		}
	}
	// Now all at once across window boundaries: halvings race with
	// Touches (the race detector checks the atomics).
	for range workers {
		wg.Go(func() {
			for i := range 3 * int(s.window) / workers {
				s.Touch(fmt.Sprintf("t%d/%d", i%13, i%3000))
			}
		})
	}
	wg.Wait()
	if got := s.touches.Load(); got != workers*perKey*keys+3*s.window {
		t.Errorf("touches = %d, want %d", got, workers*perKey*keys+3*s.window)
	}
}

func TestSketchAllocs(t *testing.T) {
	s := NewSketch(0)
	key := "t00001/720p/seg-00001.m4s"
	if n := testing.AllocsPerRun(1000, func() {
		s.Touch(key)
		_ = s.Estimate(key)
		_ = s.Popularity(key)
	}); n != 0 {
		t.Errorf("Touch+Estimate+Popularity: %v allocs, want 0", n)
	}
}

func BenchmarkSketchTouch(b *testing.B) {
	s := NewSketch(1 << 16)
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("t%05d/720p/seg-%05d.m4s", i%40, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Touch(keys[i&4095])
		i++
	}
}
