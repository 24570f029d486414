package recs_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/recs"
	"github.com/fillcast/fillcast/controlplane/recs/recstest"
)

func benchModel(b *testing.B) (*recstest.Data, *recs.Model) {
	b.Helper()
	d := recstest.Generate(recstest.Spec{Users: 5000, Titles: 10000, Genres: 50, PerUser: 30, Noise: 0.2, Seed: 1, Start: start})
	cfg := recs.DefaultALSConfig()
	cfg.Iterations = 2
	m, err := recs.Train(context.Background(), d.Train, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return d, m
}

// BenchmarkRecommend scores all 10k titles for one user.
func BenchmarkRecommend(b *testing.B) {
	_, m := benchModel(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m.Recommend(recstest.User(i%5000), 10, nil)
	}
}

// BenchmarkSimilar ranks all 10k titles by cosine similarity.
func BenchmarkSimilar(b *testing.B) {
	_, m := benchModel(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m.Similar(recstest.Title(i%10000), 10)
	}
}

// BenchmarkServiceRecommendCached is the answer from the ristretto cache.
func BenchmarkServiceRecommendCached(b *testing.B) {
	d, _ := benchModel(b)
	src := &fakeSource{data: d.Train, finished: map[string][]string{}}
	cfg := recs.DefaultConfig()
	cfg.Interval = -1
	cfg.ALS.Iterations = 1
	s, err := recs.New(cfg, recs.Deps{Source: src, Finished: src, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Retrain(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for range 10 {
		for u := range 64 {
			s.Recommend(ctx, "u"+strconv.Itoa(u), 10)
		}
		time.Sleep(10 * time.Millisecond) // ristretto admits asynchronously
	}
	users := make([]string, 64)
	for u := range users {
		users[u] = "u" + strconv.Itoa(u)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Recommend(ctx, users[i%64], 10); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrainIteration is one ALS sweep over 150k views.
func BenchmarkTrainIteration(b *testing.B) {
	d := recstest.Generate(recstest.Spec{Users: 5000, Titles: 2000, Genres: 20, PerUser: 30, Noise: 0.2, Seed: 1, Start: start})
	cfg := recs.DefaultALSConfig()
	cfg.Iterations = 1
	b.ReportAllocs()
	for b.Loop() {
		if _, err := recs.Train(context.Background(), d.Train, cfg, rand.New(rand.NewPCG(1, 1))); err != nil {
			b.Fatal(err)
		}
	}
}
