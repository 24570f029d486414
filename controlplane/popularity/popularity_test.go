package popularity

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 20, 20, 0, 0, 0, time.UTC)

const gib = 1 << 30

func newTracker(t testing.TB, cfg Config, titles ...Title) *Tracker {
	t.Helper()
	tr, err := New(cfg, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range titles {
		if err := tr.AddTitle(ti); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func views(s []Score, title string) float64 {
	for _, x := range s {
		if x.Title == title {
			return x.Views
		}
	}
	return -1
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
		{"half-life too short", Config{HalfLife: time.Second}, false},
		{"negative start fraction", Config{StartFraction: -1}, false},
		{"NaN prior factor", Config{PriorFactor: math.NaN()}, false},
		{"negative prior rank", Config{PriorRank: -2}, false},
		{"negative lead", Config{PriorLead: -time.Hour}, false},
		{"negative min views", Config{MinViews: -1}, false},
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
}

func TestViewsAndDecay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		obs  []Observation
		at   time.Time
		want float64
	}{
		{"one full view", []Observation{{Bytes: 2 * gib, At: t0}}, t0, 1},
		{"half a view", []Observation{{Bytes: gib, At: t0}}, t0, 0.5},
		{"one half-life later", []Observation{{Bytes: 2 * gib, At: t0}}, t0.Add(24 * time.Hour), 0.5},
		{"two half-lives later", []Observation{{Bytes: 2 * gib, At: t0}}, t0.Add(48 * time.Hour), 0.25},
		{"starts count a quarter view", []Observation{{Starts: 4, At: t0}}, t0, 1},
		{"out of order adds up", []Observation{
			{Bytes: 2 * gib, At: t0.Add(24 * time.Hour)},
			{Bytes: 2 * gib, At: t0},
		}, t0.Add(24 * time.Hour), 1.5},
		{"zero time means the clock", []Observation{{Bytes: 2 * gib}}, t0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(t, Config{}, Title{ID: "a", Size: 2 * gib})
			for _, o := range tt.obs {
				o.Region, o.Title = "eu", "a"
				if err := tr.Observe(o); err != nil {
					t.Fatal(err)
				}
			}
			got := views(tr.Forecast("eu", tt.at), "a")
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("views = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestObserveRejects(t *testing.T) {
	t.Parallel()
	tr := newTracker(t, Config{})
	for _, o := range []Observation{
		{Title: "a", Bytes: 1},
		{Region: "eu", Bytes: 1},
		{Region: "eu", Title: "a", Bytes: -1},
		{Region: "eu", Title: "a", Starts: -1},
	} {
		if err := tr.Observe(o); !errors.Is(err, ErrBadInput) {
			t.Errorf("Observe(%+v) = %v, want ErrBadInput", o, err)
		}
	}
	if err := tr.AddTitle(Title{ID: "a"}); !errors.Is(err, ErrBadInput) {
		t.Errorf("AddTitle without size = %v, want ErrBadInput", err)
	}
	if err := tr.ReleaseAt("nope", t0); !errors.Is(err, ErrBadInput) {
		t.Errorf("ReleaseAt of unknown title = %v, want ErrBadInput", err)
	}
}

// randomObservations returns n observations over titles t0..t(k-1) in two
// regions spread over a week.
func randomObservations(r *rand.Rand, n, k int) []Observation {
	obs := make([]Observation, n)
	for i := range obs {
		obs[i] = Observation{
			Region: []string{"eu", "us"}[r.IntN(2)],
			Title:  fmt.Sprintf("t%d", r.IntN(k)),
			Bytes:  r.Int64N(gib),
			Starts: r.IntN(3),
			At:     t0.Add(time.Duration(r.Int64N(int64(7 * 24 * time.Hour)))),
		}
	}
	return obs
}

// TestOrderDoesNotMatter is a property test: the same observations in any
// order give the same forecast.
func TestOrderDoesNotMatter(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 3))
		obs := randomObservations(r, 500, 30)
		var got [2][]Score
		for pass := range got {
			tr := newTracker(t, Config{})
			for i := range 30 {
				if err := tr.AddTitle(Title{ID: fmt.Sprintf("t%d", i), Size: gib + int64(i)}); err != nil {
					t.Fatal(err)
				}
			}
			for _, o := range obs {
				if err := tr.Observe(o); err != nil {
					t.Fatal(err)
				}
			}
			got[pass] = tr.Forecast("eu", t0.Add(8*24*time.Hour))
			r.Shuffle(len(obs), func(i, j int) { obs[i], obs[j] = obs[j], obs[i] })
		}
		if len(got[0]) != len(got[1]) {
			t.Fatalf("seed %d: %d scores, then %d", seed, len(got[0]), len(got[1]))
		}
		for i := range got[0] {
			a, b := got[0][i], got[1][i]
			if math.Abs(a.Views-b.Views) > 1e-9*a.Views {
				t.Errorf("seed %d rank %d: %+v then %+v", seed, i, a, b)
			}
		}
		if !slices.IsSortedFunc(got[0], func(a, b Score) int { return -cmpFloat(a.Views, b.Views) }) {
			t.Errorf("seed %d: forecast not sorted best first", seed)
		}
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestNewReleasePrior(t *testing.T) {
	t.Parallel()
	release := t0.Add(30 * time.Hour) // tomorrow evening
	cfg := Config{PriorRank: 2}
	tr := newTracker(t, cfg,
		Title{ID: "hit", Size: gib}, Title{ID: "second", Size: gib}, Title{ID: "old", Size: gib},
		Title{ID: "new", Size: gib, Release: release},
	)
	for title, n := range map[string]int64{"hit": 100, "second": 40, "old": 1} {
		if err := tr.Observe(Observation{Region: "eu", Title: title, Bytes: n * gib, At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		at      time.Time
		want    float64 // -1: absent
		boosted bool
	}{
		{"too early", release.Add(-40 * time.Hour), -1, false},
		{"the night before", release.Add(-18 * time.Hour), 40 * math.Exp2(-12.0/24), true},
		{"release evening", release, 40 * math.Exp2(-30.0/24), true},
		{"after the tail", release.Add(49 * time.Hour), -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tr.Forecast("eu", tt.at)
			got := views(s, "new")
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("views of new = %v, want %v (forecast %+v)", got, tt.want, s)
			}
			if i := slices.IndexFunc(s, func(x Score) bool { return x.Title == "new" }); i >= 0 && s[i].Boosted != tt.boosted {
				t.Errorf("boosted = %v, want %v", s[i].Boosted, tt.boosted)
			}
		})
	}
	// Its own history takes over once it is larger than the prior.
	if err := tr.Observe(Observation{Region: "eu", Title: "new", Bytes: 500 * gib, At: release}); err != nil {
		t.Fatal(err)
	}
	s := tr.Forecast("eu", release)
	if s[0].Title != "new" || s[0].Boosted {
		t.Errorf("top after a big first evening = %+v, want new, not boosted", s[0])
	}
	if got := tr.Forecast("us", release); len(got) != 0 {
		t.Errorf("region without history forecasts %+v, want nothing", got)
	}
}

func TestUnregisteredTitlesAreLeftOut(t *testing.T) {
	t.Parallel()
	tr := newTracker(t, Config{}, Title{ID: "a", Size: gib})
	for _, title := range []string{"a", "b"} {
		if err := tr.Observe(Observation{Region: "eu", Title: title, Bytes: gib, At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if got := tr.Forecast("eu", t0); len(got) != 1 || got[0].Title != "a" {
		t.Errorf("forecast = %+v, want only a", got)
	}
	if err := tr.AddTitle(Title{ID: "b", Size: gib / 2}); err != nil {
		t.Fatal(err)
	}
	if got := views(tr.Forecast("eu", t0), "b"); got != 2 {
		t.Errorf("views of b once sized = %v, want 2", got)
	}
	tr.RemoveTitle("a")
	if got := views(tr.Forecast("eu", t0), "a"); got != -1 {
		t.Errorf("removed title still forecast: %v", got)
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	tr := newTracker(t, Config{}, Title{ID: "a", Size: gib}, Title{ID: "b", Size: gib})
	for title, n := range map[string]int64{"a": 1000, "b": 1, "unsized": 1} {
		if err := tr.Observe(Observation{Region: "eu", Title: title, Bytes: n * gib, At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	// Ten half-lives: a is worth ~0.98 views, b ~0.001 and under 0.001.
	got := tr.Prune(t0.Add(10*24*time.Hour + time.Hour))
	if got != 1 {
		t.Errorf("Prune dropped %d entries, want 1 (b)", got)
	}
	if s := tr.Forecast("eu", t0); len(s) != 1 || s[0].Title != "a" {
		t.Errorf("after prune forecast = %+v, want a", s)
	}
	if got := tr.Prune(t0.Add(100 * 24 * time.Hour)); got != 2 {
		t.Errorf("Prune much later dropped %d, want 2", got)
	}
	if r := tr.Regions(); len(r) != 0 {
		t.Errorf("regions after full prune = %v, want none", r)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	tr := newTracker(t, Config{}, Title{ID: "a", Size: gib})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				if g%2 == 0 {
					_ = tr.Observe(Observation{Region: "eu", Title: "a", Bytes: gib, At: t0})
				} else {
					_ = tr.Forecast("eu", t0)
					if i%100 == 0 {
						if _, err := tr.Snapshot(); err != nil {
							t.Error(err)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	if got := views(tr.Forecast("eu", t0), "a"); got != 1000 {
		t.Errorf("views after 1000 concurrent observations = %v, want 1000", got)
	}
}

func BenchmarkObserve(b *testing.B) {
	tr := newTracker(b, Config{})
	titles := make([]string, 20000)
	for i := range titles {
		titles[i] = fmt.Sprintf("t%d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = tr.Observe(Observation{Region: "eu", Title: titles[i%len(titles)], Bytes: 1 << 20, At: t0.Add(time.Duration(i))})
		i++
	}
}

func BenchmarkForecast(b *testing.B) {
	tr := newTracker(b, Config{})
	r := rand.New(rand.NewPCG(1, 1))
	for i := range 20000 {
		id := fmt.Sprintf("t%d", i)
		_ = tr.AddTitle(Title{ID: id, Size: gib})
		_ = tr.Observe(Observation{Region: "eu", Title: id, Bytes: r.Int64N(100 * gib), At: t0})
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Forecast("eu", t0)
	}
}
