package latency

import (
	"math"
	"sync"
	"testing"
	"time"
)

// bucketByScan is Bucket the slow, obvious way.
func bucketByScan(d time.Duration) int {
	for i := range Buckets {
		if _, hi := Bounds(i); d < hi {
			return i
		}
	}
	return Buckets - 1
}

func TestBounds(t *testing.T) {
	t.Parallel()
	if lo, hi := Bounds(0); lo != 0 || hi != Min {
		t.Errorf("bucket 0 = [%v, %v), want [0, %v)", lo, hi, Min)
	}
	if lo, hi := Bounds(Buckets - 1); lo != Max || hi != math.MaxInt64 {
		t.Errorf("last bucket = [%v, %v), want [%v, ∞)", lo, hi, Max)
	}
	for i := 1; i < Buckets-1; i++ {
		lo, hi := Bounds(i)
		if _, prevHi := Bounds(i - 1); lo != prevHi {
			t.Errorf("bucket %d starts at %v, the previous ends at %v", i, lo, prevHi)
		}
		if r := float64(hi) / float64(lo); r < 1.21 || r > 1.23 {
			t.Errorf("bucket %d = [%v, %v): ratio %.4f, want about 1.218", i, lo, hi, r)
		}
	}
}

func TestBucket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want int
	}{
		{-time.Second, 0},
		{0, 0},
		{Min - 1, 0},
		{Min, 1},
		{Max - 1, Buckets - 2},
		{Max, Buckets - 1},
		{time.Hour, Buckets - 1},
		{math.MaxInt64, Buckets - 1},
	}
	for _, tt := range tests {
		if got := Bucket(tt.d); got != tt.want {
			t.Errorf("Bucket(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
	// Every bound and its neighbours, and a sweep between them.
	for i := range Buckets - 1 {
		_, hi := Bounds(i)
		for _, d := range []time.Duration{hi - 1, hi, hi + 1} {
			if got, want := Bucket(d), bucketByScan(d); got != want {
				t.Errorf("Bucket(%d ns) = %d, want %d", d, got, want)
			}
		}
	}
	for d := time.Duration(1); d < 2*Max; d = d*1001/1000 + 1 {
		if got, want := Bucket(d), bucketByScan(d); got != want {
			t.Fatalf("Bucket(%d ns) = %d, want %d", d, got, want)
		}
	}
}

func FuzzBucket(f *testing.F) {
	for _, d := range []int64{0, 1, int64(Min), int64(Max), 30e6} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, ns int64) {
		d := time.Duration(ns)
		if got, want := Bucket(d), bucketByScan(d); got != want {
			t.Fatalf("Bucket(%d ns) = %d, want %d", ns, got, want)
		}
	})
}

// within reports whether got is in the bucket of want, its upper bound
// included: as close as the histogram can tell.
func within(got, want time.Duration) bool {
	lo, hi := Bounds(Bucket(want))
	return lo <= got && got <= hi
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	repeat := func(n int, d time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = d
		}
		return out
	}
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration // 0 with check
		check  func(got time.Duration) bool
	}{
		{name: "empty", q: 0.99, want: 0, check: func(got time.Duration) bool { return got == 0 }},
		{name: "single value", values: []time.Duration{30 * ms}, q: 0.99, want: 30 * ms},
		{name: "single value, median", values: []time.Duration{30 * ms}, q: 0.5, want: 30 * ms},
		{name: "below Min", values: []time.Duration{10 * time.Microsecond}, q: 0.99, want: 10 * time.Microsecond},
		{name: "beyond Max reads Max", values: []time.Duration{time.Minute}, q: 0.99,
			check: func(got time.Duration) bool { return got == Max }},
		// 990 fast and 10 slow: the p99 is the last fast one, the p99.5
		// half-way into the slow bucket.
		{name: "p99 at the edge of the slow tail", values: append(repeat(990, time.Millisecond), repeat(10, 200*ms)...), q: 0.99, want: time.Millisecond},
		{name: "p99.5 in the slow tail", values: append(repeat(990, time.Millisecond), repeat(10, 200*ms)...), q: 0.995, want: 200 * ms},
		{name: "p99 in the slow tail", values: append(repeat(980, time.Millisecond), repeat(20, 200*ms)...), q: 0.99, want: 200 * ms},
		{name: "q above 1 is the maximum", values: []time.Duration{ms, 5 * ms}, q: 2, want: 5 * ms},
		{name: "q below 0 is the minimum", values: []time.Duration{ms, 5 * ms}, q: -1, want: ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, d := range tt.values {
				h.Record(d)
			}
			s := h.Snapshot()
			if got, want := s.Count(), uint64(len(tt.values)); got != want {
				t.Errorf("Count = %d, want %d", got, want)
			}
			got := s.Quantile(tt.q)
			if tt.check != nil {
				if !tt.check(got) {
					t.Errorf("Quantile(%v) = %v", tt.q, got)
				}
				return
			}
			if !within(got, tt.want) {
				lo, hi := Bounds(Bucket(tt.want))
				t.Errorf("Quantile(%v) = %v, want in [%v, %v], the bucket of %v", tt.q, got, lo, hi, tt.want)
			}
		})
	}
}

// TestQuantileInterpolates: within a bucket the rank is placed
// geometrically, by the share of the bucket's counts below it.
func TestQuantileInterpolates(t *testing.T) {
	t.Parallel()
	const i = 40
	lo, hi := Bounds(i)
	var s Snapshot
	s.Counts[i] = 100
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0, lo},
		{0.5, time.Duration(math.Sqrt(float64(lo) * float64(hi)))},
		{0.99, time.Duration(float64(lo) * math.Pow(float64(hi)/float64(lo), 0.99))},
		{1, hi},
	}
	for _, tt := range tests {
		if got := s.Quantile(tt.q); got < tt.want-1 || got > tt.want+1 {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	// The first bucket, from 0, is linear.
	var z Snapshot
	z.Counts[0] = 4
	if got, want := z.Quantile(0.5), Min/2; got != want {
		t.Errorf("first bucket: Quantile(0.5) = %v, want %v", got, want)
	}
}

// TestSnapshotSub: the difference of two snapshots is what was recorded
// in between, and its quantiles are the interval's alone.
func TestSnapshotSub(t *testing.T) {
	t.Parallel()
	var h Histogram
	for range 1000 {
		h.Record(time.Millisecond)
	}
	first := h.Snapshot()
	for range 100 {
		h.Record(300 * time.Millisecond)
	}
	second := h.Snapshot()
	d := second.Sub(first)
	if got := d.Count(); got != 100 {
		t.Errorf("interval count %d, want 100", got)
	}
	if got := d.Quantile(0.99); !within(got, 300*time.Millisecond) {
		t.Errorf("interval p99 %v, want about 300ms", got)
	}
	if got := second.Quantile(0.99); !within(got, 300*time.Millisecond) {
		t.Errorf("cumulative p99 %v, want about 300ms (100 of 1100 are slow)", got)
	}
	if got := first.Sub(first); got.Count() != 0 || got.Quantile(0.99) != 0 {
		t.Errorf("a snapshot less itself: %d counts, p99 %v", got.Count(), got.Quantile(0.99))
	}
	if got := first.Sub(second); got.Count() != 0 {
		t.Errorf("an earlier snapshot less a later one: %d counts, want 0", got.Count())
	}
	var zero Snapshot
	if got := second.Sub(zero); got != second {
		t.Error("a snapshot less the zero snapshot is not itself")
	}
}

// TestRecordConcurrent: concurrent records are all counted (run with
// -race).
func TestRecordConcurrent(t *testing.T) {
	t.Parallel()
	var h Histogram
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	for range 10 {
		h.Snapshot() // reads race with the writes
	}
	wg.Wait()
	if s := h.Snapshot(); s.Count() != 4000 {
		t.Errorf("count %d, want 4000", s.Count())
	}
}

// BenchmarkRecord is the cost the hit path pays per request.
func BenchmarkRecord(b *testing.B) {
	var h Histogram
	d := 137 * time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		h.Record(d)
		d += 7919 * time.Nanosecond
		if d > 20*time.Millisecond {
			d = 37 * time.Microsecond
		}
	}
}

// BenchmarkRecordParallel is Record from every core into one histogram:
// the counters of the busy buckets are shared cache lines.
func BenchmarkRecordParallel(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := 137 * time.Microsecond
		for pb.Next() {
			h.Record(d)
			d += 7919 * time.Nanosecond
			if d > 20*time.Millisecond {
				d = 37 * time.Microsecond
			}
		}
	})
}

func BenchmarkSnapshotQuantile(b *testing.B) {
	var h Histogram
	for i := range 10000 {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	prev := h.Snapshot()
	b.ReportAllocs()
	for b.Loop() {
		s := h.Snapshot()
		d := s.Sub(prev)
		_ = d.Quantile(0.99)
	}
}
