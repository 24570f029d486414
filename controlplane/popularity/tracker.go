package popularity

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Title is what the Tracker knows of a catalog title.
type Title struct {
	ID string `json:"id"`
	// Size is the bytes of the whole packaged title (every rendition);
	// it must be positive.
	Size int64 `json:"size"`
	// Release is when the title becomes playable; zero means it already
	// is and gets no new-release prior.
	Release time.Time `json:"release,omitzero"`
}

// Tracker accumulates decayed viewing per region and title. Create it
// with New; it is safe for concurrent use.
type Tracker struct {
	cfg    Config
	now    func() time.Time
	halfNS float64

	mu      sync.RWMutex
	titles  map[string]Title
	regions map[string]map[string]*entry
	// stream and seq are the event stream's identity and the sequence
	// of the last batch of observations folded in (ObserveBatch).
	stream time.Time
	seq    uint64
}

// entry is a title's viewing in one region, decayed to at (Unix ns).
type entry struct {
	bytes  float64
	starts float64
	at     int64
}

// New returns an empty Tracker. now is the clock (nil means time.Now),
// read only for observations without a time and by Snapshot.
func New(cfg Config, now func() time.Time) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if now == nil {
		now = time.Now
	}
	return &Tracker{
		cfg:     cfg,
		now:     now,
		halfNS:  float64(cfg.HalfLife),
		titles:  make(map[string]Title),
		regions: make(map[string]map[string]*entry),
	}, nil
}

// Config returns the configuration in force, defaults filled in.
func (t *Tracker) Config() Config { return t.cfg }

// factor is 2^(-dt/HalfLife): what a value is worth dt nanoseconds later.
func (t *Tracker) factor(dt int64) float64 {
	return math.Exp2(-float64(dt) / t.halfNS)
}

// AddTitle registers or updates a title: its size, and its release time
// for a title not out yet. Viewing of a title not registered is kept but
// left out of forecasts until AddTitle gives its size.
func (t *Tracker) AddTitle(ti Title) error {
	if ti.ID == "" {
		return fmt.Errorf("%w: title without an id", ErrBadInput)
	}
	if ti.Size <= 0 {
		return fmt.Errorf("%w: title %q: size %d: want the positive byte size of its packaged files", ErrBadInput, ti.ID, ti.Size)
	}
	t.mu.Lock()
	t.titles[ti.ID] = ti
	t.mu.Unlock()
	return nil
}

// ReleaseAt sets when a registered title becomes playable (zero: it
// already is).
func (t *Tracker) ReleaseAt(title string, release time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	ti, ok := t.titles[title]
	if !ok {
		return fmt.Errorf("%w: release of title %q: register it with AddTitle first", ErrBadInput, title)
	}
	ti.Release = release
	t.titles[title] = ti
	return nil
}

// RemoveTitle forgets a title and its viewing in every region.
func (t *Tracker) RemoveTitle(title string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.titles, title)
	for _, r := range t.regions {
		delete(r, title)
	}
}

// Observe adds viewing. Observations may come in any order: each counts
// its value decayed from its own time.
func (t *Tracker) Observe(o Observation) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.observe(o)
}

// ObserveBatch adds the observations of the event stream's message at
// seq, all at once, unless a message at or after seq was folded in
// already: a message delivered again counts once. Observations that are
// not valid are skipped and counted in the answer.
func (t *Tracker) ObserveBatch(seq uint64, obs []Observation) (refused int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq <= t.seq {
		return 0
	}
	t.seq = seq
	for _, o := range obs {
		if t.observe(o) != nil {
			refused++
		}
	}
	return refused
}

// Position returns the identity (creation time) of the event stream
// folded in and the sequence of the last message folded.
func (t *Tracker) Position() (stream time.Time, seq uint64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.stream, t.seq
}

// ResetStream forgets the viewing folded from a stream that is gone
// (keeping the titles): the stream created at stream is folded from its
// start.
func (t *Tracker) ResetStream(stream time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stream.IsZero() && t.seq == 0 {
		// Viewing from before any stream (a snapshot of an older
		// version): kept, and the stream folded on top of it.
		t.stream = stream
		return
	}
	t.stream, t.seq = stream, 0
	t.regions = make(map[string]map[string]*entry)
}

// observe is Observe with t.mu held.
func (t *Tracker) observe(o Observation) error {
	if o.Region == "" || o.Title == "" {
		return fmt.Errorf("%w: observation needs a region and a title (got %q, %q)", ErrBadInput, o.Region, o.Title)
	}
	if o.Bytes < 0 || o.Starts < 0 {
		return fmt.Errorf("%w: observation of %q in %q: bytes %d, starts %d: want non-negative counts", ErrBadInput, o.Title, o.Region, o.Bytes, o.Starts)
	}
	if o.Bytes == 0 && o.Starts == 0 {
		return nil
	}
	at := o.At
	if at.IsZero() {
		at = t.now()
	}
	ns := at.UnixNano()
	r := t.regions[o.Region]
	if r == nil {
		r = make(map[string]*entry)
		t.regions[o.Region] = r
	}
	e := r[o.Title]
	if e == nil {
		r[o.Title] = &entry{bytes: float64(o.Bytes), starts: float64(o.Starts), at: ns}
		return nil
	}
	if ns >= e.at {
		f := t.factor(ns - e.at)
		e.bytes = e.bytes*f + float64(o.Bytes)
		e.starts = e.starts*f + float64(o.Starts)
		e.at = ns
		return nil
	}
	f := t.factor(e.at - ns)
	e.bytes += float64(o.Bytes) * f
	e.starts += float64(o.Starts) * f
	return nil
}

// views returns the entry's decayed views at ns for a title of size.
func (t *Tracker) views(e *entry, size int64, ns int64) float64 {
	v := e.bytes/float64(size) + e.starts*t.cfg.StartFraction
	return v * t.factor(ns-e.at)
}

// Forecast returns the expected demand of every title with a positive
// score in region, as of at, best first (ties by title id): the decayed
// score, raised to the new-release prior for titles within PriorLead
// before and PriorTail after their release. Titles released more than
// PriorLead after at, and titles not registered with AddTitle, are left
// out. A region with no history forecasts nothing.
//
// The fill planner passes the time of the peak it fills for (tomorrow
// evening): decay scales every history alike, so the order is the
// recent curve's, and the titles released by then are boosted.
func (t *Tracker) Forecast(region string, at time.Time) []Score {
	ns := at.UnixNano()
	t.mu.RLock()
	defer t.mu.RUnlock()
	r := t.regions[region]
	out := make([]Score, 0, len(r))
	for id, e := range r {
		ti, ok := t.titles[id]
		if !ok || t.unreleased(ti, at) {
			continue
		}
		if v := t.views(e, ti.Size, ns); v > 0 {
			out = append(out, Score{Title: id, Views: v})
		}
	}
	sortScores(out)
	prior := 0.0
	if len(out) > 0 {
		prior = out[min(t.cfg.PriorRank, len(out))-1].Views * t.cfg.PriorFactor
	}
	if prior <= 0 {
		return out
	}
	var boost map[string]bool
	for id, ti := range t.titles {
		if ti.Release.IsZero() || t.unreleased(ti, at) || !at.Before(ti.Release.Add(t.cfg.PriorTail)) {
			continue
		}
		own := 0.0
		if e := r[id]; e != nil {
			own = t.views(e, ti.Size, ns)
		}
		if own < prior {
			if boost == nil {
				boost = make(map[string]bool)
			}
			boost[id] = true
		}
	}
	if boost == nil {
		return out
	}
	for i := range out {
		if boost[out[i].Title] {
			out[i] = Score{Title: out[i].Title, Views: prior, Boosted: true}
			delete(boost, out[i].Title)
		}
	}
	for id := range boost {
		out = append(out, Score{Title: id, Views: prior, Boosted: true})
	}
	sortScores(out)
	return out
}

// unreleased reports whether ti comes out more than PriorLead after at.
func (t *Tracker) unreleased(ti Title, at time.Time) bool {
	return !ti.Release.IsZero() && ti.Release.Sub(at) > t.cfg.PriorLead
}

func sortScores(s []Score) {
	slices.SortFunc(s, func(a, b Score) int {
		if c := cmp.Compare(b.Views, a.Views); c != 0 {
			return c
		}
		return cmp.Compare(a.Title, b.Title)
	})
}

// Regions returns the regions with viewing, sorted.
func (t *Tracker) Regions() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.regions))
	for r := range t.regions {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Prune forgets the viewing whose decayed score at at has fallen under
// Config.MinViews (for titles without a size: under one byte and
// MinViews starts), and returns how many entries it dropped. The leader
// calls it now and then to bound memory.
func (t *Tracker) Prune(at time.Time) int {
	ns := at.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for name, r := range t.regions {
		for id, e := range r {
			var small bool
			if ti, ok := t.titles[id]; ok {
				small = t.views(e, ti.Size, ns) < t.cfg.MinViews
			} else {
				f := t.factor(ns - e.at)
				small = e.bytes*f < 1 && e.starts*f < t.cfg.MinViews
			}
			if small {
				delete(r, id)
				n++
			}
		}
		if len(r) == 0 {
			delete(t.regions, name)
		}
	}
	return n
}
