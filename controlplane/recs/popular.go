package recs

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"
)

// Popular ranks titles by recent watch weight: each interaction counts
// its weight halved for every HalfLife of age, so the ranking follows
// what is trending. It is immutable and safe for concurrent use.
type Popular struct {
	ranked []Item
}

// NewPopular ranks the titles of data as of now; halfLife ≤ 0 means no
// decay (all-time most popular).
func NewPopular(data []events.Interaction, now time.Time, halfLife time.Duration) *Popular {
	sum := map[string]float64{}
	for _, in := range data {
		if in.Weight <= 0 || math.IsNaN(in.Weight) || in.Title == "" {
			continue
		}
		w := in.Weight
		if halfLife > 0 {
			age := max(now.Sub(in.Last), 0)
			w *= math.Exp2(-float64(age) / float64(halfLife))
		}
		sum[in.Title] += w
	}
	p := &Popular{ranked: make([]Item, 0, len(sum))}
	for id, s := range sum {
		p.ranked = append(p.ranked, Item{ID: id, Score: s})
	}
	slices.SortFunc(p.ranked, func(a, b Item) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return p
}

// Top returns the limit most popular titles that exclude (nil: none)
// does not report.
func (p *Popular) Top(limit int, exclude func(title string) bool) []Item {
	out := make([]Item, 0, min(max(limit, 0), len(p.ranked)))
	for _, it := range p.ranked {
		if len(out) >= limit {
			break
		}
		if exclude != nil && exclude(it.ID) {
			continue
		}
		out = append(out, it)
	}
	return out
}

// Scores returns every title's popularity, for search's ranking.
func (p *Popular) Scores() map[string]float64 {
	out := make(map[string]float64, len(p.ranked))
	for _, it := range p.ranked {
		out[it.ID] = it.Score
	}
	return out
}

// topUp appends to items, up to limit in all, the catalog's titles
// that are neither listed already nor reported by exclude (nil: none),
// in the catalog's order and with a score of 0.
func topUp(items []Item, catalog []string, limit int, exclude func(title string) bool) []Item {
	listed := make(map[string]struct{}, limit)
	for _, it := range items {
		listed[it.ID] = struct{}{}
	}
	for _, id := range catalog {
		if len(items) >= limit {
			break
		}
		if _, dup := listed[id]; dup || id == "" || (exclude != nil && exclude(id)) {
			continue
		}
		listed[id] = struct{}{}
		items = append(items, Item{ID: id})
	}
	return items
}
