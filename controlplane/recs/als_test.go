package recs_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/recs/recstest"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// planted is small enough to train in well under a second under -race.
func planted(seed uint64) *recstest.Data {
	return recstest.Generate(recstest.Spec{Users: 1200, Titles: 240, Genres: 8, PerUser: 20, Holdout: 3,
		Noise: 0.15, Seed: seed, Start: start})
}

func ids(items []recs.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func TestALSBeatsPopularityOnPlantedTastes(t *testing.T) {
	t.Parallel()
	d := planted(42)
	pop := recs.NewPopular(d.Train, time.Time{}, 0)
	mp := d.Evaluate(func(u string, k int, ex func(string) bool) []string { return ids(pop.Top(k, ex)) }, 10, 1)
	for _, solver := range []recs.Solver{recs.SolverCG, recs.SolverCholesky} {
		t.Run(string(solver), func(t *testing.T) {
			t.Parallel()
			cfg := recs.DefaultALSConfig()
			cfg.Solver = solver
			cfg.Factors = 16
			cfg.Iterations = 8
			m, err := recs.Train(context.Background(), d.Train, cfg, rand.New(rand.NewPCG(1, 1)))
			if err != nil {
				t.Fatal(err)
			}
			als := d.Evaluate(func(u string, k int, ex func(string) bool) []string {
				items, ok := m.Recommend(u, k, ex)
				if !ok {
					t.Fatalf("model does not know %s", u)
				}
				return ids(items)
			}, 10, 1)
			t.Logf("ALS %v; most-popular %v", als, mp)
			if als.Recall < 2*mp.Recall || als.NDCG < 2*mp.NDCG {
				t.Errorf("ALS Recall@10 %.3f NDCG@10 %.3f, want at least twice most-popular's %.3f %.3f",
					als.Recall, als.NDCG, mp.Recall, mp.NDCG)
			}
		})
	}
}

func TestSimilarStaysInGenre(t *testing.T) {
	t.Parallel()
	d := planted(7)
	cfg := recs.DefaultALSConfig()
	cfg.Factors = 16
	cfg.Iterations = 8
	m, err := recs.Train(context.Background(), d.Train, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	same, total := 0, 0
	for tt := 0; tt < 240; tt += 7 {
		items, ok := m.Similar(recstest.Title(tt), 5)
		if !ok {
			continue
		}
		for _, it := range items {
			if it.ID == recstest.Title(tt) {
				t.Fatalf("Similar(%d) lists the title itself", tt)
			}
			other, err := strconv.Atoi(strings.TrimPrefix(it.ID, "t"))
			if err != nil {
				t.Fatal(err)
			}
			total++
			if d.Genre[other] == d.Genre[tt] {
				same++
			}
		}
	}
	// Chance is 1 in 8.
	if total == 0 || float64(same)/float64(total) < 0.5 {
		t.Errorf("%d of %d similar titles share the genre, want at least half", same, total)
	}
	if _, ok := m.Similar("nope", 5); ok {
		t.Errorf("Similar(unknown) ok")
	}
}

func TestRecommendExcludesAndRanks(t *testing.T) {
	t.Parallel()
	data := []events.Interaction{}
	// Two camps: users 0-9 watch a*, users 10-19 watch b*; user "x"
	// watched a1 and a2 only.
	for u := range 20 {
		camp := "a"
		if u >= 10 {
			camp = "b"
		}
		for i := range 4 {
			data = append(data, events.Interaction{User: recstest.User(u), Title: camp + string(rune('0'+i)), Weight: 1})
		}
	}
	data = append(data,
		events.Interaction{User: "x", Title: "a1", Weight: 1},
		events.Interaction{User: "x", Title: "a2", Weight: 1})
	cfg := recs.DefaultALSConfig()
	cfg.Factors = 4
	cfg.Solver = recs.SolverCholesky
	m, err := recs.Train(context.Background(), data, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{"a1": true, "a2": true}
	items, ok := m.Recommend("x", 2, func(t string) bool { return seen[t] })
	if !ok {
		t.Fatal("unknown user x")
	}
	got := map[string]bool{}
	for _, it := range items {
		got[it.ID] = true
	}
	if len(items) != 2 || !got["a0"] || !got["a3"] {
		t.Errorf("Recommend(x) = %v, want a0 and a3", ids(items))
	}
	if items[0].Score < items[1].Score {
		t.Errorf("results not best first: %v", items)
	}
	if _, ok := m.Recommend("stranger", 5, nil); ok {
		t.Errorf("Recommend(unknown user) ok")
	}
	if _, err := recs.Train(context.Background(), nil, cfg, nil); !errors.Is(err, recs.ErrNoData) {
		t.Errorf("Train(nil) = %v, want ErrNoData", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := recs.Train(ctx, data, cfg, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Train(cancelled) = %v, want context.Canceled", err)
	}
}

func TestCGMatchesCholesky(t *testing.T) {
	t.Parallel()
	// With as many CG steps as factors, CG solves each row exactly, so
	// both solvers must agree on a whole training run.
	d := recstest.Generate(recstest.Spec{Users: 60, Titles: 30, Genres: 3, PerUser: 8, Noise: 0.1, Seed: 3, Start: start})
	cfg := recs.DefaultALSConfig()
	cfg.Factors, cfg.Iterations, cfg.Workers = 6, 3, 1
	chol, cg := cfg, cfg
	chol.Solver = recs.SolverCholesky
	cg.Solver, cg.CGSteps = recs.SolverCG, 30
	a, err := recs.Train(context.Background(), d.Train, chol, rand.New(rand.NewPCG(9, 9)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := recs.Train(context.Background(), d.Train, cg, rand.New(rand.NewPCG(9, 9)))
	if err != nil {
		t.Fatal(err)
	}
	for u := range 60 {
		x, _ := a.Recommend(recstest.User(u), 30, nil)
		y, _ := b.Recommend(recstest.User(u), 30, nil)
		sx := map[string]float64{}
		for _, it := range x {
			sx[it.ID] = it.Score
		}
		for _, it := range y {
			if got, want := it.Score, sx[it.ID]; math.Abs(got-want) > 1e-6 {
				t.Fatalf("user %d title %s: CG score %g, Cholesky %g", u, it.ID, got, want)
			}
		}
	}
}

func TestPopularDecay(t *testing.T) {
	t.Parallel()
	now := start.Add(30 * 24 * time.Hour)
	data := []events.Interaction{
		{User: "a", Title: "old", Weight: 1, Last: now.Add(-20 * 24 * time.Hour)},
		{User: "b", Title: "old", Weight: 1, Last: now.Add(-20 * 24 * time.Hour)},
		{User: "c", Title: "old", Weight: 1, Last: now.Add(-20 * 24 * time.Hour)},
		{User: "d", Title: "new", Weight: 1, Last: now.Add(-time.Hour)},
	}
	tests := []struct {
		name     string
		halfLife time.Duration
		want     string
	}{
		{"all time", 0, "old"},
		{"trending", 72 * time.Hour, "new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := recs.NewPopular(data, now, tt.halfLife).Top(2, nil)
			if len(got) != 2 || got[0].ID != tt.want {
				t.Errorf("Top = %v, want %s first", got, tt.want)
			}
			if got := recs.NewPopular(data, now, tt.halfLife).Top(5, func(s string) bool { return s == tt.want }); len(got) != 1 {
				t.Errorf("Top with exclusion = %v, want one title", got)
			}
		})
	}
}

func TestALSConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *recs.ALSConfig)
		ok   bool
	}{
		{"defaults", func(c *recs.ALSConfig) {}, true},
		{"zero fills", func(c *recs.ALSConfig) { *c = recs.ALSConfig{} }, true},
		{"bad solver", func(c *recs.ALSConfig) { c.Solver = "svd" }, false},
		{"huge factors", func(c *recs.ALSConfig) { c.Factors = 10000 }, false},
		{"negative lambda", func(c *recs.ALSConfig) { c.Lambda = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := recs.DefaultALSConfig()
			tt.edit(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
