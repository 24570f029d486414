package trace

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func small(seed uint64) Config {
	return Config{Titles: 300, Segments: 40, Days: 4, SessionsPerDay: 3000, Seed: seed}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero is the default", Config{}, true},
		{"default", DefaultConfig(), true},
		{"negative titles", Config{Titles: -1}, false},
		{"one segment", Config{Segments: 1}, false},
		{"negative duration", Config{SegmentDuration: -time.Second}, false},
		{"too many days", Config{Days: 1000}, false},
		{"negative zipf", Config{Zipf: -1}, false},
		{"new share over 1", Config{NewPerDay: 2}, false},
		{"negative new rank", Config{NewRank: -3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if got := err == nil; got != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
		})
	}
	if _, err := Generate(Config{Days: -1}); !errors.Is(err, ErrConfig) {
		t.Errorf("Generate with bad config = %v, want ErrConfig", err)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a, err := Generate(small(1))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(small(1))
	c, _ := Generate(small(2))
	if !slices.Equal(a.Requests, b.Requests) || !slices.Equal(a.Sessions, b.Sessions) {
		t.Errorf("same seed, different traces")
	}
	if slices.Equal(a.Requests, c.Requests) {
		t.Errorf("different seeds, same trace")
	}
}

// TestShape checks the properties the simulations rely on.
func TestShape(t *testing.T) {
	t.Parallel()
	tr, err := Generate(small(3))
	if err != nil {
		t.Fatal(err)
	}
	cfg := tr.Config
	if got, want := len(tr.Titles), 300+3*4; got != want {
		t.Errorf("%d titles, want %d (300 and 1 %% new per day)", got, want)
	}
	if !slices.IsSortedFunc(tr.Requests, func(a, b Request) int { return int(a.At - b.At) }) {
		t.Errorf("requests not sorted by time")
	}
	perTitle := make([]int, len(tr.Titles))
	var perHour [24]int
	for _, q := range tr.Requests {
		ti := tr.Titles[q.Title]
		if q.Segment < 0 || int(q.Segment) >= ti.Segments {
			t.Fatalf("request for segment %d of %s, which has %d", q.Segment, ti.ID, ti.Segments)
		}
		if !ti.Release.IsZero() && tr.Time(q.At).Before(ti.Release) {
			t.Fatalf("request for %s at %v, before its release %v", ti.ID, tr.Time(q.At), ti.Release)
		}
		if q.At < time.Duration(cfg.Days)*24*time.Hour {
			perTitle[q.Title]++
			perHour[int(q.At/time.Hour)%24]++
		}
	}
	// Diurnal: the peak hours carry far more than the small hours.
	var peak, trough int
	for h := range 24 {
		if PeakHours(h) {
			peak += perHour[h]
		}
		if h >= 3 && h < 6 {
			trough += perHour[h]
		}
	}
	if peak < 10*trough {
		t.Errorf("peak hours %d requests, 03:00–06:00 %d: want a strong evening peak", peak, trough)
	}
	// Zipf: the top tenth of the titles draw a large share.
	counts := slices.Clone(perTitle)
	slices.Sort(counts)
	slices.Reverse(counts)
	var top, all int
	for k, c := range counts {
		all += c
		if k < len(counts)/10 {
			top += c
		}
	}
	if float64(top) < 0.3*float64(all) {
		t.Errorf("top 10 %% of titles draw %d of %d requests, want a skewed popularity", top, all)
	}
}

// TestNewReleasesTopTheirFirstEvening: a new release enters at a rank
// up to NewRank; with enough sessions to rank by, it shows up near there.
func TestNewReleasesTopTheirFirstEvening(t *testing.T) {
	t.Parallel()
	cfg := small(4)
	cfg.Segments, cfg.SessionsPerDay = 10, 20000
	tr, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = tr.Config
	checked := 0
	for i, ti := range tr.Titles {
		if ti.Release.IsZero() || !ti.Announced.Equal(ti.Release.Add(-24*time.Hour)) {
			continue
		}
		from, to := ti.Release.Sub(cfg.Start), ti.Release.Sub(cfg.Start)+6*time.Hour
		evening := make([]int, len(tr.Titles))
		for _, s := range tr.Sessions {
			if s.Start >= from && s.Start < to {
				evening[s.Title]++
			}
		}
		rank := 0
		for _, n := range evening {
			if n > evening[i] {
				rank++
			}
		}
		if rank >= 2*cfg.NewRank {
			t.Errorf("%s ranks %d on its first evening (%d sessions), want among the top %d", ti.ID, rank+1, evening[i], 2*cfg.NewRank)
		}
		checked++
	}
	if checked != 12 {
		t.Errorf("checked %d new releases, want 12", checked)
	}
}

func TestSegmentSizes(t *testing.T) {
	t.Parallel()
	tr, err := Generate(Config{Titles: 20, Segments: 100, Days: 1, SessionsPerDay: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i, ti := range tr.Titles {
		var sum int64
		for s := range ti.Segments {
			n := tr.SegmentSize(i, s)
			if float64(n) < 0.9*float64(ti.SegmentBytes)-1 || float64(n) > 1.1*float64(ti.SegmentBytes)+1 {
				t.Fatalf("%s segment %d is %d bytes, mean %d: want within 10 %%", ti.ID, s, n, ti.SegmentBytes)
			}
			sum += n
		}
		if sum != ti.Bytes() {
			t.Errorf("%s: segments sum to %d, Bytes() = %d", ti.ID, sum, ti.Bytes())
		}
	}
	if got := tr.Path(0); got != "720p/seg-00001.m4s" {
		t.Errorf("Path(0) = %q", got)
	}
}
