package trace

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// diurnal is the relative rate of session starts in each hour of the
// day: a trough before dawn, a slow rise through the day and an evening
// peak around 21:00, the shape of residential video traffic.
var diurnal = [24]float64{
	0.35, 0.2, 0.12, 0.08, 0.06, 0.06, 0.1, 0.18, 0.25, 0.3, 0.35, 0.4,
	0.45, 0.45, 0.45, 0.5, 0.6, 0.75, 0.95, 1.2, 1.45, 1.5, 1.2, 0.7,
}

// PeakHours reports whether hour (0–23) is in the evening peak: 19:00 to
// 23:00, where the diurnal curve is above 1.
func PeakHours(hour int) bool { return diurnal[hour%24] > 1 }

// releaseHour is when new titles come out, local time.
const releaseHour = 18

// Generate builds the trace cfg describes.
func Generate(cfg Config) (*Trace, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &generator{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, 0x5eed))}
	g.catalog()
	t := &Trace{Config: cfg, Titles: g.titles}
	for d := range cfg.Days {
		g.sessions(t, d)
		g.drift()
	}
	slices.SortFunc(t.Sessions, func(a, b Session) int { return cmp.Compare(a.Start, b.Start) })
	t.Requests = expand(t.Sessions, cfg.SegmentDuration)
	return t, nil
}

type generator struct {
	cfg      Config
	r        *rand.Rand
	titles   []Title
	interest []float64 // log interest of each title
	fading   []int     // days left of a new release's fade
}

// catalog draws the starting titles and the new releases of every day.
func (g *generator) catalog() {
	c := g.cfg
	newPerDay := max(1, int(math.Round(c.NewPerDay*float64(c.Titles))))
	if c.NewPerDay == 0 {
		newPerDay = 0
	}
	total := c.Titles + newPerDay*c.Days
	g.titles = make([]Title, 0, total)
	g.interest = make([]float64, 0, total)
	g.fading = make([]int, total)
	for i := range total {
		ti := Title{
			ID:           fmt.Sprintf("t%05d", i),
			Segments:     max(2, int(float64(c.Segments)*(0.5+g.r.Float64()))),
			SegmentBytes: max(1, int64(float64(c.SegmentBytes)*(0.5+g.r.Float64()))),
		}
		if i >= c.Titles {
			day := (i - c.Titles) / newPerDay
			ti.Release = c.Start.Add(time.Duration(day)*24*time.Hour + releaseHour*time.Hour)
			ti.Announced = ti.Release.Add(-24 * time.Hour)
		}
		g.titles = append(g.titles, ti)
		g.interest = append(g.interest, g.r.NormFloat64())
	}
}

// released reports whether title i is out at offset at.
func (g *generator) released(i int, at time.Duration) bool {
	rel := g.titles[i].Release
	return rel.IsZero() || !g.cfg.Start.Add(at).Before(rel)
}

// weights returns the cumulative Zipf weights of the titles out by the
// end of day d, ranked by interest. New releases of day d take a rank
// from 1 to NewRank first, by setting their interest to that of the
// title holding the rank.
func (g *generator) weights(d int) (order []int, cum []float64) {
	end := time.Duration(d+1) * 24 * time.Hour
	today := func(i int) bool { return g.released(i, end) && !g.released(i, end-24*time.Hour) }
	for i := range g.titles {
		if g.released(i, end) && !today(i) {
			order = append(order, i)
		}
	}
	byInterest := func(a, b int) int {
		if c := cmp.Compare(g.interest[b], g.interest[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	slices.SortFunc(order, byInterest)
	for i := range g.titles {
		if today(i) {
			rank := g.r.IntN(min(g.cfg.NewRank, max(len(order), 1)))
			if len(order) > 0 {
				g.interest[i] = g.interest[order[rank]] + 1e-6
			}
			g.fading[i] = 7
			order = slices.Insert(order, rank, i)
		}
	}
	cum = make([]float64, len(order))
	sum := 0.0
	for k := range order {
		sum += math.Pow(float64(k+1), -g.cfg.Zipf)
		cum[k] = sum
	}
	return order, cum
}

// sessions adds day d's sessions to t.
func (g *generator) sessions(t *Trace, d int) {
	order, cum := g.weights(d)
	var hourCum [24]float64
	sum := 0.0
	for h, w := range diurnal {
		sum += w
		hourCum[h] = sum
	}
	day := time.Duration(d) * 24 * time.Hour
	for range g.cfg.SessionsPerDay {
		h := sort.SearchFloat64s(hourCum[:], g.r.Float64()*sum)
		at := day + time.Duration(h)*time.Hour + time.Duration(g.r.Int64N(int64(time.Hour)))
		var title int
		for {
			k := sort.SearchFloat64s(cum, g.r.Float64()*cum[len(cum)-1])
			title = order[min(k, len(order)-1)]
			if g.released(title, at) {
				break
			}
		}
		t.Sessions = append(t.Sessions, g.session(at, title))
	}
}

// session draws what a viewer watches of title: three in ten sample up to
// a tenth and leave; the rest watch 30 % to all of it. One in five
// resumes where an earlier session stopped.
func (g *generator) session(at time.Duration, title int) Session {
	segs := g.titles[title].Segments
	frac := 0.3 + 0.9*g.r.Float64()
	if g.r.IntN(10) < 3 {
		frac = 0.1 * g.r.Float64()
	}
	first := 0
	if g.r.IntN(5) == 0 {
		first = g.r.IntN(segs * 7 / 10)
	}
	count := max(1, min(segs-first, int(frac*float64(segs))))
	return Session{Start: at, Title: int32(title), First: int32(first), Count: int32(count)}
}

// drift moves every title's interest at the end of a day: a random walk,
// and a fall for new releases in their first week.
func (g *generator) drift() {
	for i := range g.interest {
		g.interest[i] += g.cfg.Drift * g.r.NormFloat64()
		if g.fading[i] > 0 {
			g.interest[i] -= g.cfg.NewFade
			g.fading[i]--
		}
	}
}

// expand turns sessions into their segment requests, sorted by time (ties
// by title and segment, so that the order is fixed).
func expand(sessions []Session, every time.Duration) []Request {
	n := 0
	for _, s := range sessions {
		n += int(s.Count)
	}
	out := make([]Request, 0, n)
	for i, s := range sessions {
		for k := range s.Count {
			out = append(out, Request{At: s.Start + time.Duration(k)*every, Title: s.Title, Segment: s.First + k, Session: int32(i)})
		}
	}
	slices.SortFunc(out, func(a, b Request) int {
		if c := cmp.Compare(a.At, b.At); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Title, b.Title); c != 0 {
			return c
		}
		return cmp.Compare(a.Segment, b.Segment)
	})
	return out
}
