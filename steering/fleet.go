package steering

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/steering/prefix"
	"github.com/fillcast/fillcast/steering/rendezvous"
)

// ErrFleet is wrapped by the errors of Build and Update for sites or
// appliances that cannot be steered to.
var ErrFleet = errors.New("steering: bad fleet")

// Appliance is what steering needs to know about one appliance: the
// registry entry and the soft state of its latest heartbeat.
type Appliance struct {
	ID   string // unique in the fleet
	Site string // the id of a site given to Build
	URL  string // base URL players fetch from, "http://host:port"

	// Weight is the appliance's serving capacity relative to its peers
	// (for instance its network Gbps); it scales both its share of titles
	// and its load bound. Zero means 1.
	Weight float64

	// Load is the appliance's current load in players, as its heartbeat
	// reports it or as the control plane estimates it (for example bps
	// divided by a typical stream bitrate). Steering adds the players
	// this node sent it recently.
	Load float64

	// Draining appliances get no new players.
	Draining bool

	// LastSeen is when its latest heartbeat arrived. An appliance not seen
	// within Config.StaleAfter of a decision, or never (zero), is skipped.
	LastSeen time.Time

	// Titles is the set of titles the appliance holds or is planned to
	// hold (flash profile). Nil means every title (storage profile: the
	// whole catalog).
	Titles *TitleSet
}

// Fleet is an immutable snapshot of sites and appliances, the input of
// every steering decision. Build a new one when sites or heartbeats
// change and swap it in with an atomic.Pointer; readers never lock. A
// Fleet is safe for concurrent use.
type Fleet struct {
	s     *Steerer
	sites *siteIndex
	spans []span     // per site: its appliances in apps
	apps  []app      // grouped by site, in id order within a site
	names []appNames // parallel to apps, read only for the answer
	byID  map[string]int32
}

// siteIndex is the part of a Fleet that depends on sites only, shared by
// the Fleets that Update derives.
type siteIndex struct {
	sites  []fillcast.Site
	byID   map[string]int32
	parent []int32 // -1 for none
	table  *prefix.Table[int32]
}

// span is the range [lo, hi) of a site's appliances in Fleet.apps. When
// the site has at most maxClasses distinct weights, classes says how many
// and each app's class indexes them: among appliances of one weight the
// rendezvous order is the order of the raw hash, so steering needs the
// logarithm of weighted rendezvous hashing only for each class's leaders.
// classes is 0 for a site with more distinct weights.
type span struct {
	lo, hi  int32
	classes uint8
	weights [maxClasses]float64
}

// maxClasses bounds the distinct weights per site that steering ranks
// class by class; typical sites have one or two hardware generations.
const maxClasses = 4

// app is what every decision reads of an Appliance, packed into one
// cache line; the strings an answer returns live apart in appNames.
type app struct {
	key      uint64 // rendezvous.Key(id)
	weight   float64
	load     float64
	deadline int64 // LastSeen + StaleAfter in Unix ns; MinInt64 if draining or never seen
	titles   *TitleSet
	recent   *counter
	class    uint8 // index into its span's weights
}

type appNames struct {
	id, site, url string
}

// Build returns a Fleet of sites and appliances. It checks that site ids
// are unique, kinds are isp or ix, parents exist without cycles, every
// prefix is valid CIDR and no prefix belongs to two sites (a more specific
// prefix inside another site's is fine: the longest match wins), and that
// every appliance has a unique id, a known site, an http(s) base URL and
// a finite, non-negative weight and load. Errors name the offending site,
// prefix or appliance.
func (s *Steerer) Build(sites []fillcast.Site, apps []Appliance) (*Fleet, error) {
	idx, err := newSiteIndex(sites)
	if err != nil {
		return nil, err
	}
	return s.place(idx, apps, nil)
}

// Update returns a Fleet with prev's sites and a new set of appliances,
// skipping the prefix table rebuild; it is what the control plane calls
// on heartbeats. prev must come from the same Steerer.
func (s *Steerer) Update(prev *Fleet, apps []Appliance) (*Fleet, error) {
	if prev == nil || prev.s != s {
		return nil, fmt.Errorf("%w: update needs a fleet built by this steerer", ErrFleet)
	}
	return s.place(prev.sites, apps, prev)
}

func newSiteIndex(sites []fillcast.Site) (*siteIndex, error) {
	x := &siteIndex{
		sites:  append([]fillcast.Site(nil), sites...),
		byID:   make(map[string]int32, len(sites)),
		parent: make([]int32, len(sites)),
	}
	var entries []prefix.Entry[int32]
	for i, st := range sites {
		if st.ID == "" {
			return nil, fmt.Errorf("%w: site %d has no id", ErrFleet, i)
		}
		if _, dup := x.byID[st.ID]; dup {
			return nil, fmt.Errorf("%w: site %q is listed twice", ErrFleet, st.ID)
		}
		if st.Kind != fillcast.SiteISP && st.Kind != fillcast.SiteIX {
			return nil, fmt.Errorf("%w: site %q: kind %q: want %q or %q", ErrFleet, st.ID, st.Kind, fillcast.SiteISP, fillcast.SiteIX)
		}
		x.byID[st.ID] = int32(i)
		for _, ps := range st.Prefixes {
			p, err := prefix.Parse(ps)
			if err != nil {
				return nil, fmt.Errorf("%w: site %q: %w", ErrFleet, st.ID, err)
			}
			entries = append(entries, prefix.Entry[int32]{Prefix: p, Value: int32(i)})
		}
	}
	for i, st := range sites {
		x.parent[i] = -1
		if st.Parent == "" {
			continue
		}
		p, ok := x.byID[st.Parent]
		if !ok {
			return nil, fmt.Errorf("%w: site %q: parent %q is not a site", ErrFleet, st.ID, st.Parent)
		}
		x.parent[i] = p
	}
	for i := range sites {
		// A chain longer than the number of sites has a cycle.
		for j, n := int32(i), 0; j >= 0; j, n = x.parent[j], n+1 {
			if n > len(sites) {
				return nil, fmt.Errorf("%w: site %q: parents form a cycle", ErrFleet, sites[i].ID)
			}
		}
	}
	t, err := prefix.New(entries)
	if err != nil {
		var c []string
		if errors.Is(err, prefix.ErrConflict) {
			c = conflictingSites(entries, sites)
		}
		if len(c) == 2 {
			return nil, fmt.Errorf("%w: sites %q and %q: %w", ErrFleet, c[0], c[1], err)
		}
		return nil, fmt.Errorf("%w: %w", ErrFleet, err)
	}
	x.table = t
	return x, nil
}

// conflictingSites names the first two sites that claim one prefix, for
// an error message an operator can act on.
func conflictingSites(entries []prefix.Entry[int32], sites []fillcast.Site) []string {
	owner := make(map[netip.Prefix]int32, len(entries))
	for _, e := range entries {
		if o, ok := owner[e.Prefix]; ok && o != e.Value {
			return []string{sites[o].ID, sites[e.Value].ID}
		}
		owner[e.Prefix] = e.Value
	}
	return nil
}

// place lays the appliances out over the sites of idx. Checks that only
// depend on an appliance's URL are skipped when prev had the same URL for
// it: parsing a thousand URLs is most of the cost of an Update.
func (s *Steerer) place(idx *siteIndex, in []Appliance, prev *Fleet) (*Fleet, error) {
	f := &Fleet{
		s:     s,
		sites: idx,
		spans: make([]span, len(idx.sites)),
		apps:  make([]app, len(in)),
		names: make([]appNames, len(in)),
		byID:  make(map[string]int32, len(in)),
	}
	order := make([]int, len(in))
	siteOf := make([]int32, len(in))
	for i, a := range in {
		if a.ID == "" {
			return nil, fmt.Errorf("%w: appliance %d has no id", ErrFleet, i)
		}
		if _, dup := f.byID[a.ID]; dup {
			return nil, fmt.Errorf("%w: appliance %q is listed twice", ErrFleet, a.ID)
		}
		f.byID[a.ID] = 0
		si, ok := idx.byID[a.Site]
		if !ok {
			return nil, fmt.Errorf("%w: appliance %q: site %q is not a site", ErrFleet, a.ID, a.Site)
		}
		if !prev.knownURL(a.ID, a.URL) {
			if err := checkBaseURL(a.URL); err != nil {
				return nil, fmt.Errorf("%w: appliance %q: url %v", ErrFleet, a.ID, err)
			}
		}
		if a.Weight < 0 || math.IsNaN(a.Weight) || math.IsInf(a.Weight, 0) {
			return nil, fmt.Errorf("%w: appliance %q: weight %v: want a positive capacity, or 0 for 1", ErrFleet, a.ID, a.Weight)
		}
		if a.Load < 0 || math.IsNaN(a.Load) || math.IsInf(a.Load, 0) {
			return nil, fmt.Errorf("%w: appliance %q: load %v: want a non-negative number of players", ErrFleet, a.ID, a.Load)
		}
		order[i], siteOf[i] = i, si
	}
	sort.Slice(order, func(x, y int) bool {
		a, b := order[x], order[y]
		if siteOf[a] != siteOf[b] {
			return siteOf[a] < siteOf[b]
		}
		return in[a].ID < in[b].ID
	})

	s.mu.Lock()
	defer s.mu.Unlock()
	for j, i := range order {
		a := in[i]
		w := a.Weight
		if w == 0 {
			w = 1
		}
		deadline := int64(math.MinInt64) // draining and silent look alike to a decision
		if !a.LastSeen.IsZero() && !a.Draining {
			deadline = a.LastSeen.UnixNano() + s.staleNS
		}
		f.apps[j] = app{
			key:      rendezvous.Key(a.ID),
			weight:   w,
			load:     a.Load,
			deadline: deadline,
			titles:   a.Titles,
			recent:   s.counterFor(a.ID),
		}
		f.names[j] = appNames{id: a.ID, site: a.Site, url: strings.TrimRight(a.URL, "/")}
		f.byID[a.ID] = int32(j)
	}
	for id := range s.counters {
		if _, ok := f.byID[id]; !ok {
			delete(s.counters, id) // gone from the fleet; an older Fleet may still hold it
		}
	}
	for j := range f.apps {
		si := siteOf[order[j]]
		sp := &f.spans[si]
		if sp.hi == 0 {
			sp.lo, sp.hi = int32(j), int32(j)
		}
		sp.hi++
		f.apps[j].class = sp.classify(f.apps[j].weight)
	}
	return f, nil
}

// classify returns the class of weight w in the site, adding a class if
// there is room, and gives up on classes (0) once a site has more than
// maxClasses weights. The first appliance of a span starts class 0.
func (sp *span) classify(w float64) uint8 {
	if sp.hi-sp.lo == 1 {
		sp.classes, sp.weights[0] = 1, w
		return 0
	}
	if sp.classes == 0 {
		return 0
	}
	for c := uint8(0); c < sp.classes; c++ {
		if sp.weights[c] == w {
			return c
		}
	}
	if sp.classes == maxClasses {
		sp.classes = 0
		return 0
	}
	sp.weights[sp.classes] = w
	sp.classes++
	return sp.classes - 1
}

// knownURL reports whether f (possibly nil) holds appliance id with the
// base URL u, already checked.
func (f *Fleet) knownURL(id, u string) bool {
	if f == nil {
		return false
	}
	j, ok := f.byID[id]
	return ok && f.names[j].url == strings.TrimRight(u, "/")
}

// Len returns the number of appliances in the fleet.
func (f *Fleet) Len() int { return len(f.apps) }

// Site returns the id of the site whose prefixes best match addr (tier 1
// alone), or false when no site announces it.
func (f *Fleet) Site(addr netip.Addr) (string, bool) {
	i, ok := f.sites.table.Lookup(addr)
	if !ok {
		return "", false
	}
	return f.sites.sites[i].ID, true
}

// Eligible reports whether the appliance would be considered for title at
// time now: known, not draining, seen recently, and holding the title.
func (f *Fleet) Eligible(id, title string, now time.Time) bool {
	j, ok := f.byID[id]
	if !ok {
		return false
	}
	return f.apps[j].eligible(rendezvous.Key(title), now.UnixNano())
}

// Serving reports whether the appliance takes new players at time now for
// any title at all: known, not draining, seen recently, and holding at
// least one title (a flash appliance holds only what it filled).
func (f *Fleet) Serving(id string, now time.Time) bool {
	j, ok := f.byID[id]
	if !ok {
		return false
	}
	a := &f.apps[j]
	return now.UnixNano() <= a.deadline && (a.titles == nil || a.titles.Len() > 0)
}

func (a *app) eligible(title uint64, nowNS int64) bool {
	return nowNS <= a.deadline && (a.titles == nil || a.titles.has(title))
}
