// Package recstest generates viewing data with planted tastes for the
// tests and benchmarks of package recs, and scores recommenders on it
// with Recall@k and NDCG@k over held-out views.
//
// Every title belongs to one genre and has a popularity within it
// (Zipf). Every user prefers one or two genres: each view is, with
// probability 1−Noise, a title of a preferred genre and otherwise a title
// of any genre, drawn by popularity. A user's last Holdout views are kept
// out of training; a recommender that learns tastes finds them more often
// than the global most-popular list does.
package recstest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"
)

// Spec describes a data set.
type Spec struct {
	Users, Titles, Genres int
	// PerUser is the mean number of distinct titles a user watched
	// (geometric-ish spread between PerUser/2 and 3·PerUser/2).
	PerUser int
	// Holdout is the number of last views kept out of training.
	Holdout int
	// Noise is the share of views outside the user's genres.
	Noise float64
	// Zipf is the popularity skew of titles inside a genre (> 1).
	Zipf float64
	// Seed makes the data reproducible.
	Seed uint64
	// Start is the time of the first view; views are a minute apart.
	Start time.Time
}

// Data is a generated data set.
type Data struct {
	Spec Spec
	// Train holds every view but each user's last Holdout.
	Train []events.Interaction
	// Genre is each title's genre, by title index.
	Genre []int
	views [][]int32 // per user, distinct titles in viewing order
}

// User names user u.
func User(u int) string { return "u" + strconv.Itoa(u) }

// Title names title t.
func Title(t int) string { return "t" + strconv.Itoa(t) }

// Generate builds the data set of spec.
func Generate(spec Spec) *Data {
	if spec.Zipf <= 1 {
		spec.Zipf = 1.1
	}
	r := rand.New(rand.NewPCG(spec.Seed, 0x5eed))
	d := &Data{Spec: spec, Genre: make([]int, spec.Titles), views: make([][]int32, spec.Users)}
	byGenre := make([][]int32, spec.Genres)
	for t := range spec.Titles {
		g := t % spec.Genres
		d.Genre[t] = g
		byGenre[g] = append(byGenre[g], int32(t))
	}
	// Shuffle within genres so that popularity rank is not title order.
	for _, ts := range byGenre {
		r.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
	}
	zipfs := make([]*rand.Zipf, spec.Genres)
	for g, ts := range byGenre {
		zipfs[g] = rand.NewZipf(r, spec.Zipf, 2, uint64(len(ts)-1))
	}
	seen := map[int32]bool{}
	d.Train = make([]events.Interaction, 0, spec.Users*spec.PerUser)
	for u := range spec.Users {
		likes := []int{r.IntN(spec.Genres)}
		if r.IntN(2) == 0 {
			likes = append(likes, r.IntN(spec.Genres))
		}
		n := spec.PerUser/2 + r.IntN(spec.PerUser+1)
		n = max(n, spec.Holdout+1)
		clear(seen)
		vs := make([]int32, 0, n)
		for tries := 0; len(vs) < n && tries < 20*n; tries++ {
			g := likes[r.IntN(len(likes))]
			if r.Float64() < spec.Noise {
				g = r.IntN(spec.Genres)
			}
			t := byGenre[g][zipfs[g].Uint64()]
			if seen[t] {
				continue
			}
			seen[t] = true
			vs = append(vs, t)
		}
		d.views[u] = vs
		name := User(u)
		for i, t := range vs[:max(len(vs)-spec.Holdout, 0)] {
			d.Train = append(d.Train, events.Interaction{
				User: name, Title: Title(int(t)), Weight: 0.3 + 0.7*r.Float64(),
				Last: spec.Start.Add(time.Duration(u*100+i) * time.Minute),
			})
		}
	}
	return d
}

// Recommender answers the top k titles for a user, leaving out those
// exclude reports.
type Recommender func(user string, k int, exclude func(title string) bool) []string

// Metrics are averages over the evaluated users.
type Metrics struct {
	Recall, NDCG float64
	Users        int
}

// String formats the metrics.
func (m Metrics) String() string {
	return fmt.Sprintf("Recall@k %.4f  NDCG@k %.4f  (%d users)", m.Recall, m.NDCG, m.Users)
}

// Evaluate scores rec on the held-out views of every step-th user: each
// user's training titles are excluded, and a hit is a held-out title in
// the top k.
func (d *Data) Evaluate(rec Recommender, k, step int) Metrics {
	var m Metrics
	for u := 0; u < len(d.views); u += max(step, 1) {
		vs := d.views[u]
		h := min(d.Spec.Holdout, len(vs))
		if h == 0 {
			continue
		}
		train := map[string]bool{}
		for _, t := range vs[:len(vs)-h] {
			train[Title(int(t))] = true
		}
		held := map[string]bool{}
		for _, t := range vs[len(vs)-h:] {
			held[Title(int(t))] = true
		}
		got := rec(User(u), k, func(t string) bool { return train[t] })
		var hits, dcg float64
		for i, t := range got[:min(k, len(got))] {
			if held[t] {
				hits++
				dcg += 1 / math.Log2(float64(i+2))
			}
		}
		var idcg float64
		for i := range min(k, h) {
			idcg += 1 / math.Log2(float64(i+2))
		}
		m.Recall += hits / float64(min(k, h))
		m.NDCG += dcg / idcg
		m.Users++
	}
	if m.Users > 0 {
		m.Recall /= float64(m.Users)
		m.NDCG /= float64(m.Users)
	}
	return m
}
