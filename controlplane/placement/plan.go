package placement

import (
	"cmp"
	"math"
	"slices"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/steering/rendezvous"
)

// Plan is the titles each appliance of a site should hold.
type Plan struct {
	// Version grows by one each time a plan differs from the previous
	// one; an appliance refuses a manifest older than the one it has.
	Version uint64 `json:"version"`
	// Holds maps every appliance of the input to its titles, sorted.
	Holds map[string][]string `json:"holds"`
	// Unplaced lists, sorted, the catalog titles no storage appliance
	// had room for (or all of them in a site without storage): the site
	// falls back to its parent or the origin for these.
	Unplaced []string `json:"unplaced,omitempty"`
}

// tier is the appliances of one profile.
type tier struct {
	apps  []int // indexes into the input's appliances
	nodes []rendezvous.Node
	limit []int64 // bytes this plan may fill
	used  []int64
}

// state is one Plan computation.
type state struct {
	cfg     Config
	in      Input
	keys    []uint64  // rendezvous.Key of each title
	score   []float64 // forecast views of each title
	share   []float64 // each title's share of the site's demand
	holds   [][]int32 // per appliance: title indexes
	holders [][]int32 // per title: appliance indexes
	scores  []float64 // scratch for ranking
}

// Plan computes the site's plan from in. prev is the site's previous plan
// (nil for the first): flash titles stay where it put them when they can,
// and the new plan's Version follows it. The result depends only on in,
// prev and the configuration.
func (p *Planner) Plan(in Input, prev *Plan) (*Plan, error) {
	if err := checkInput(in); err != nil {
		return nil, err
	}
	s := &state{
		cfg:     p.cfg,
		in:      in,
		keys:    make([]uint64, len(in.Catalog)),
		score:   make([]float64, len(in.Catalog)),
		share:   make([]float64, len(in.Catalog)),
		holds:   make([][]int32, len(in.Appliances)),
		holders: make([][]int32, len(in.Catalog)),
	}
	var demand float64
	for i, t := range in.Catalog {
		s.keys[i] = rendezvous.Key(t.ID)
		s.score[i] = in.Scores[t.ID]
		s.share[i] = s.score[i] * float64(t.Size)
		demand += s.share[i]
	}
	if demand > 0 {
		for i := range s.share {
			s.share[i] /= demand
		}
	}
	storage := s.tier(fillcast.ProfileStorage, 1)
	flash := s.tier(fillcast.ProfileFlash, p.cfg.FlashFill)
	unplaced := s.placeStorage(storage)
	s.placeFlash(flash, prev)
	return s.result(prev, unplaced), nil
}

// tier collects the appliances of profile, each allowed fill × capacity.
func (s *state) tier(profile string, fill float64) *tier {
	t := &tier{}
	for i, a := range s.in.Appliances {
		if a.Profile != profile {
			continue
		}
		t.apps = append(t.apps, i)
	}
	t.nodes = make([]rendezvous.Node, len(t.apps))
	t.limit = make([]int64, len(t.apps))
	// Order by id, so that the plan does not depend on the input's order.
	slices.SortFunc(t.apps, func(a, b int) int { return cmp.Compare(s.in.Appliances[a].ID, s.in.Appliances[b].ID) })
	for j, a := range t.apps {
		app := s.in.Appliances[a]
		w := app.Weight
		if w == 0 {
			w = 1
		}
		t.nodes[j] = rendezvous.Node{Key: rendezvous.Key(app.ID), Weight: w}
		t.limit[j] = int64(float64(app.Capacity) * fill)
	}
	t.used = make([]int64, len(t.apps))
	if len(s.scores) < len(t.apps) {
		s.scores = make([]float64, len(t.apps))
	}
	return t
}

// copies is how many copies of title i its demand calls for on a tier of
// n appliances (at least 1, at most n and MaxCopies).
func (s *state) copies(i, n int) int {
	c := int(math.Ceil(s.share[i]/s.cfg.CopyDemand - 1e-9))
	if s.cfg.MaxCopies > 0 {
		c = min(c, s.cfg.MaxCopies)
	}
	return max(1, min(c, n))
}

// ranker walks title i's rendezvous order over a tier, best first.
type ranker struct {
	scores []float64 // -1 once walked
	left   int
}

func (s *state) rank(i int, t *tier) ranker {
	sc := s.scores[:len(t.nodes)]
	for j, n := range t.nodes {
		sc[j] = rendezvous.Score(s.keys[i], n.Key, n.Weight)
	}
	return ranker{scores: sc, left: len(sc)}
}

// next returns the tier index of the next appliance in the order, or -1.
// Ties go to the lower index, as rendezvous.Rank breaks them.
func (r *ranker) next() int {
	if r.left == 0 {
		return -1
	}
	best := -1
	for j, v := range r.scores {
		if v >= 0 && (best < 0 || v > r.scores[best]) {
			best = j
		}
	}
	r.scores[best] = -1
	r.left--
	return best
}

// holds reports whether appliance a already holds title i.
func (s *state) holdsTitle(a, i int) bool {
	return slices.Contains(s.holders[i], int32(a))
}

func (s *state) assign(t *tier, j, i int) {
	a := t.apps[j]
	t.used[j] += s.in.Catalog[i].Size
	s.holds[a] = append(s.holds[a], int32(i))
	s.holders[i] = append(s.holders[i], int32(a))
}

// walk places want more copies of title i on the tier, in the title's
// rendezvous order, on appliances that do not hold it and whose used
// bytes stay within room(j). It returns how many it placed.
func (s *state) walk(t *tier, i, want int, room func(j int) int64) int {
	size := s.in.Catalog[i].Size
	r := s.rank(i, t)
	placed := 0
	for placed < want {
		j := r.next()
		if j < 0 {
			break
		}
		if t.used[j]+size <= room(j) && !s.holdsTitle(t.apps[j], i) {
			s.assign(t, j, i)
			placed++
		}
	}
	return placed
}

// placeStorage gives every title one copy on storage, largest titles
// first so that they find room, then extra copies to the titles with the
// largest demand. It returns the titles that found no room.
func (s *state) placeStorage(t *tier) []int {
	n := len(s.in.Catalog)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		ta, tb := s.in.Catalog[a], s.in.Catalog[b]
		if c := cmp.Compare(tb.Size, ta.Size); c != 0 {
			return c
		}
		return cmp.Compare(ta.ID, tb.ID)
	})
	full := func(j int) int64 { return t.limit[j] }
	var unplaced []int
	for _, i := range order {
		if len(t.apps) == 0 || s.walk(t, i, 1, full) == 0 {
			unplaced = append(unplaced, i)
		}
	}
	if len(t.apps) < 2 {
		return unplaced
	}
	extra := func(j int) int64 { return int64(float64(t.limit[j]) * s.cfg.StorageFill) }
	hot := s.byScore(func(i int) bool { return s.copies(i, len(t.apps)) > 1 && len(s.holders[i]) > 0 })
	for _, i := range hot {
		s.walk(t, i, s.copies(i, len(t.apps))-1, extra)
	}
	return unplaced
}

// byScore returns the titles keep accepts, highest forecast first (ties
// by id): the order of value per byte stored.
func (s *state) byScore(keep func(i int) bool) []int {
	var out []int
	for i := range s.in.Catalog {
		if keep(i) {
			out = append(out, i)
		}
	}
	slices.SortFunc(out, func(a, b int) int {
		if c := cmp.Compare(s.score[b], s.score[a]); c != 0 {
			return c
		}
		return cmp.Compare(s.in.Catalog[a].ID, s.in.Catalog[b].ID)
	})
	return out
}

// result turns the state into a Plan versioned after prev.
func (s *state) result(prev *Plan, unplaced []int) *Plan {
	p := &Plan{Holds: make(map[string][]string, len(s.in.Appliances))}
	for a, app := range s.in.Appliances {
		ids := make([]string, len(s.holds[a]))
		for k, i := range s.holds[a] {
			ids[k] = s.in.Catalog[i].ID
		}
		slices.Sort(ids)
		p.Holds[app.ID] = ids
	}
	for _, i := range unplaced {
		p.Unplaced = append(p.Unplaced, s.in.Catalog[i].ID)
	}
	slices.Sort(p.Unplaced)
	switch {
	case prev == nil:
		p.Version = 1
	case p.Same(prev):
		p.Version = prev.Version
	default:
		p.Version = prev.Version + 1
	}
	return p
}
