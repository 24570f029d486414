package recs

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// Item is one recommended or similar title with its score.
type Item struct {
	ID    string  `json:"id"`
	Score float64 `json:"score"`
}

// Model is a trained factorisation. It is immutable and safe for
// concurrent use.
type Model struct {
	users  map[string]int
	titles []string
	tix    map[string]int
	x, y   *mat.Dense
	unit   *mat.Dense // y with unit rows, for cosine similarity

	// scratch recycles the per-call score vectors (one float per title)
	// so that a request does not allocate tens of kilobytes.
	scratch sync.Pool
}

// scores returns a score vector of the model's length, to hand back to
// m.scratch.
func (m *Model) scores() *mat.VecDense {
	if v, ok := m.scratch.Get().(*mat.VecDense); ok {
		return v
	}
	return mat.NewVecDense(len(m.titles), nil)
}

func newModel(users, titles []string, x, y *mat.Dense) *Model {
	m := &Model{users: make(map[string]int, len(users)), titles: titles, tix: make(map[string]int, len(titles)), x: x, y: y}
	for i, u := range users {
		m.users[u] = i
	}
	for i, t := range titles {
		m.tix[t] = i
	}
	m.unit = mat.DenseCopyOf(y)
	for i := range titles {
		row := m.unit.RawRowView(i)
		if n := floats.Norm(row, 2); n > 0 {
			floats.Scale(1/n, row)
		}
	}
	return m
}

// Users and Titles return the model's dimensions.
func (m *Model) Users() int { return len(m.users) }

// Titles returns the number of titles the model knows.
func (m *Model) Titles() int { return len(m.titles) }

// KnowsUser reports whether the user had interactions at training time.
func (m *Model) KnowsUser(user string) bool {
	_, ok := m.users[user]
	return ok
}

// Recommend returns the user's limit best titles by predicted
// preference, leaving out those exclude reports (nil: none). ok is false
// for a user the model never saw.
func (m *Model) Recommend(user string, limit int, exclude func(title string) bool) (items []Item, ok bool) {
	u, ok := m.users[user]
	if !ok {
		return nil, false
	}
	sv := m.scores()
	defer m.scratch.Put(sv)
	sv.MulVec(m.y, m.x.RowView(u))
	return m.top(sv.RawVector().Data, limit, func(i int) bool { return exclude != nil && exclude(m.titles[i]) }), true
}

// Similar returns the limit titles whose factors point most nearly the
// same way as title's (cosine similarity), title itself left out. ok is
// false for a title the model never saw.
func (m *Model) Similar(title string, limit int) (items []Item, ok bool) {
	t, ok := m.tix[title]
	if !ok {
		return nil, false
	}
	sv := m.scores()
	defer m.scratch.Put(sv)
	sv.MulVec(m.unit, m.unit.RowView(t))
	return m.top(sv.RawVector().Data, limit, func(i int) bool { return i == t }), true
}

// top returns the limit highest scores, best first, skipping skip(i).
func (m *Model) top(scores []float64, limit int, skip func(i int) bool) []Item {
	if limit <= 0 {
		return []Item{}
	}
	h := make(minHeap, 0, limit)
	for i, s := range scores {
		if math.IsNaN(s) || (len(h) == limit && s <= h[0].score) || skip(i) {
			continue
		}
		if len(h) < limit {
			h.push(scored{i, s})
		} else {
			h[0] = scored{i, s}
			h.down(0)
		}
	}
	out := make([]Item, len(h))
	for j := len(h) - 1; j >= 0; j-- {
		top := h.pop()
		out[j] = Item{ID: m.titles[top.i], Score: top.score}
	}
	return out
}

type scored struct {
	i     int
	score float64
}

// minHeap keeps the best scores seen, the worst of them at the root;
// ties break towards the lower index so that results are deterministic.
type minHeap []scored

func (h minHeap) less(a, b int) bool {
	if h[a].score != h[b].score {
		return h[a].score < h[b].score
	}
	return h[a].i > h[b].i
}

func (h *minHeap) push(s scored) {
	*h = append(*h, s)
	for c := len(*h) - 1; c > 0; {
		p := (c - 1) / 2
		if !h.less(c, p) {
			break
		}
		(*h)[c], (*h)[p] = (*h)[p], (*h)[c]
		c = p
	}
}

func (h *minHeap) pop() scored {
	old := *h
	top := old[0]
	old[0] = old[len(old)-1]
	*h = old[:len(old)-1]
	if len(*h) > 0 {
		h.down(0)
	}
	return top
}

func (h minHeap) down(p int) {
	for {
		c := 2*p + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h.less(c+1, c) {
			c++
		}
		if !h.less(c, p) {
			return
		}
		h[c], h[p] = h[p], h[c]
		p = c
	}
}
