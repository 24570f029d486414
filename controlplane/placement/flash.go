package placement

import (
	"slices"

	"github.com/fillcast/fillcast"
)

// placeFlash fills the flash tier with the most popular titles that fit,
// keeping the previous plan's flash copies where the bound allows.
func (s *state) placeFlash(t *tier, prev *Plan) {
	if len(t.apps) == 0 {
		return
	}
	n := len(t.apps)
	cands := s.byScore(func(i int) bool { return s.score[i] > 0 })
	var want int64
	for _, i := range cands {
		want += int64(s.copies(i, n)) * s.in.Catalog[i].Size
	}
	popular, bound := s.flashBounds(t, want)

	// Choose the popular set and its copies greedily by value density.
	var picks []pick
	picked := make(map[int]bool)
	var chosen int64
	for _, i := range cands {
		size := s.in.Catalog[i].Size
		c := min(s.copies(i, n), int((popular-chosen)/size))
		if c <= 0 {
			continue
		}
		picks = append(picks, pick{i, c})
		picked[i] = true
		chosen += int64(c) * size
	}
	room := func(j int) int64 { return bound[j] }
	if prev != nil {
		s.keepFlash(t, prev, bound, picks)
	}
	for _, pk := range picks {
		if have := s.flashCopies(pk.title); have < pk.copies {
			s.walk(t, pk.title, pk.copies-have, room)
		}
	}
	// Titles the packing left out leave gaps: fill them with the next
	// most popular titles that fit.
	free := func() int64 {
		var m int64
		for j := range t.apps {
			m = max(m, bound[j]-t.used[j])
		}
		return m
	}
	gap := free()
	for _, i := range cands {
		if picked[i] || s.in.Catalog[i].Size > gap {
			continue
		}
		if s.walk(t, i, 1, room) > 0 {
			gap = free()
		}
	}
}

// flashBounds returns the popular bytes to plan on the flash tier, at
// most want, and each appliance's bound: (1+ε) times its weighted share
// of those bytes, and no more than its limit. When weights do not follow
// capacities the bounds can add up to less than the bytes they share;
// the popular bytes are then the largest amount P whose bounds still hold
// P. The bounds' sum minus P is concave in P and zero at zero, so a
// binary search finds it.
func (s *state) flashBounds(t *tier, want int64) (int64, []int64) {
	var weight float64
	var budget int64
	for j := range t.apps {
		weight += t.nodes[j].Weight
		budget += t.limit[j]
	}
	bound := make([]int64, len(t.apps))
	fill := func(p int64) int64 {
		var sum int64
		for j := range bound {
			share := (1 + s.cfg.Epsilon) * t.nodes[j].Weight / weight * float64(p)
			bound[j] = min(t.limit[j], int64(share))
			sum += bound[j]
		}
		return sum
	}
	hi := min(want, budget)
	if fill(hi) < hi {
		lo := int64(0) // fill(lo) >= lo
		for lo < hi-1 {
			mid := lo + (hi-lo)/2
			if fill(mid) >= mid {
				lo = mid
			} else {
				hi = mid
			}
		}
		hi = lo
		fill(hi)
	}
	return hi, bound
}

// flashCopies counts the flash appliances holding title i.
func (s *state) flashCopies(i int) int {
	n := 0
	for _, a := range s.holders[i] {
		if s.in.Appliances[a].Profile == fillcast.ProfileFlash {
			n++
		}
	}
	return n
}

// pick is a title chosen for the flash tier and its number of copies.
type pick struct{ title, copies int }

// keepFlash puts the picks back on the flash appliances
// that held them in prev, in the picks' order, as long as each stays under
// its bound.
func (s *state) keepFlash(t *tier, prev *Plan, bound []int64, picks []pick) {
	tierOf := make(map[string]int, len(t.apps))
	for j, a := range t.apps {
		tierOf[s.in.Appliances[a].ID] = j
	}
	index := make(map[string]int, len(s.in.Catalog))
	for i, ti := range s.in.Catalog {
		index[ti.ID] = i
	}
	was := make(map[int][]int) // title → tier indexes that held it
	for id, titles := range prev.Holds {
		j, ok := tierOf[id]
		if !ok {
			continue
		}
		for _, title := range titles {
			if i, ok := index[title]; ok {
				was[i] = append(was[i], j)
			}
		}
	}
	for _, pk := range picks {
		i := pk.title
		js := was[i]
		slices.Sort(js)
		kept := 0
		for _, j := range js {
			if kept == pk.copies {
				break
			}
			if t.used[j]+s.in.Catalog[i].Size <= bound[j] {
				s.assign(t, j, i)
				kept++
			}
		}
	}
}
