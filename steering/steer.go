package steering

import (
	"math"
	"net/netip"

	"github.com/fillcast/fillcast/steering/rendezvous"
)

// Role says why a target is in an answer.
type Role uint8

// Roles, in the order they appear in an answer.
const (
	// RolePrimary is the appliance the player should use.
	RolePrimary Role = iota + 1
	// RoleSecond is another appliance in the primary's site.
	RoleSecond
	// RoleParent is an appliance in a site further up the chain, normally
	// the IX site that is the ISP site's parent.
	RoleParent
	// RoleOrigin is the origin, the last resort.
	RoleOrigin
)

var roleNames = [...]string{"", "primary", "second", "parent", "origin"}

// String returns the role's lower-case name.
func (r Role) String() string {
	if int(r) < len(roleNames) && r != 0 {
		return roleNames[r]
	}
	return "unknown"
}

// Target is one entry of a steering answer. Its strings point into the
// Fleet; nothing is copied.
type Target struct {
	Role      Role
	Appliance string // appliance id; empty for the origin
	Site      string // site id; empty for the origin
	URL       string // base URL without a trailing slash
}

// MaxTargets is the longest answer Steer gives: primary, second, parent
// and origin. A destination slice with this capacity never grows.
const MaxTargets = 4

// Request is one steering question.
type Request struct {
	// Client is the player's address (tier 1 matches it to a site).
	Client netip.Addr

	// Title is the title to play.
	Title string

	// DryRun leaves this node's recent-assignment counters alone: for a
	// content steering manifest reload by a player already counted, or a
	// what-if tool. The answer is the same.
	DryRun bool
}

// Steer appends to dst the ranked targets for req, best first, and
// returns the extended slice: the primary appliance and a second one in
// the first site on the client's chain (its matched site, then parents)
// with a healthy appliance holding the title; one appliance from the next
// such site up the chain; and the origin when one is configured. A client
// outside every site's prefixes gets the origin alone. Unless
// req.DryRun, the primary is counted as one more recent player.
//
// Steer takes no locks and, when dst has room for MaxTargets more
// entries, allocates nothing. Answers are deterministic: the same fleet,
// counters, clock reading and request give the same targets on every
// node.
func (f *Fleet) Steer(dst []Target, req Request) []Target {
	s := f.s
	now := s.now()
	c := choice{
		title:   rendezvous.Key(req.Title),
		nowNS:   now.UnixNano(),
		tick:    s.recent.tick(now),
		epsilon: s.cfg.Epsilon,
	}
	si, ok := f.sites.table.Lookup(req.Client)
	found := false
	for ; ok && si >= 0; si = f.sites.parent[si] {
		first, second := f.pick(si, &c)
		if first < 0 {
			continue
		}
		if found {
			dst = append(dst, f.target(first, RoleParent))
			break
		}
		found = true
		a := &f.apps[first]
		if !req.DryRun {
			a.recent.add(&s.recent, c.tick, 1)
		}
		dst = append(dst, f.target(first, RolePrimary))
		if second >= 0 {
			dst = append(dst, f.target(second, RoleSecond))
		}
	}
	if s.cfg.Origin != "" {
		dst = append(dst, Target{Role: RoleOrigin, URL: s.cfg.Origin})
	}
	return dst
}

func (f *Fleet) target(j int32, r Role) Target {
	n := &f.names[j]
	return Target{Role: r, Appliance: n.id, Site: n.site, URL: n.url}
}

// choice carries what every site on a request's chain is asked with.
type choice struct {
	title   uint64
	nowNS   int64
	tick    uint32
	epsilon float64
	touched uint64 // see touchTitleSets
}

// cacheSize is how many eligible appliances of a site pick remembers
// between its two passes; in larger sites the rest are recomputed.
const cacheSize = 64

// pick returns the two best appliances of site si for the title, or -1:
// walking the title's rendezvous order, the first appliances whose load
// is under the bound, then (if fewer than two are) the best of those over
// it. The bound for appliance i is (1+ε)·(L+1)·wᵢ/W where L and W are the
// total load and weight of the eligible appliances; the bounds sum to
// more than L, so some eligible appliance is always under its own.
func (f *Fleet) pick(si int32, c *choice) (first, second int32) {
	sp := &f.spans[si]
	var (
		idx           [cacheSize]int32
		loads         [cacheSize]float64
		total, weight float64
		n             int
		lastSet       *TitleSet // flash appliances often share a set
		lastHas       bool
	)
	c.touched += f.touchTitleSets(sp, c.title)
	for j := sp.lo; j < sp.hi; j++ {
		a := &f.apps[j]
		if c.nowNS > a.deadline {
			continue
		}
		if a.titles != nil {
			if a.titles != lastSet {
				lastSet, lastHas = a.titles, a.titles.has(c.title)
			}
			if !lastHas {
				continue
			}
		}
		l := a.load + float64(a.recent.value(&f.s.recent, c.tick))
		if n < cacheSize {
			idx[n], loads[n] = j, l
		}
		total += l
		weight += a.weight
		n++
	}
	if n == 0 {
		return -1, -1
	}
	r := ranking{f: f, sp: sp, title: c.title, bound: (1 + c.epsilon) * (total + 1) / weight}
	r.reset()
	for k := 0; k < n && k < cacheSize; k++ {
		r.offer(idx[k], &f.apps[idx[k]], loads[k])
	}
	if n > cacheSize {
		// A site this large is rare: recompute what did not fit.
		seen := 0
		for j := sp.lo; j < sp.hi; j++ {
			a := &f.apps[j]
			if !a.eligible(c.title, c.nowNS) {
				continue
			}
			if seen++; seen > cacheSize {
				r.offer(j, a, a.load+float64(a.recent.value(&f.s.recent, c.tick)))
			}
		}
	}
	return r.result()
}

// touchTitleSets reads the slot each flash appliance's title set will
// probe first. The loads do not depend on one another, so the CPU waits
// for their cache misses together instead of one after another in the
// loop that uses them: about a quarter less CPU per decision in
// BenchmarkSteer and BenchmarkSteerOwnSets. It returns what it read so
// that the compiler keeps the loads.
func (f *Fleet) touchTitleSets(sp *span, title uint64) uint64 {
	var sum uint64
	k := slotKey(title)
	for j := sp.lo; j < sp.hi; j++ {
		if t := f.apps[j].titles; t != nil && len(t.slots) > 0 {
			sum += t.slots[k&uint64(len(t.slots)-1)]
		}
	}
	return sum
}

// ranking finds the two best appliances of a site in the order "under
// the load bound, by rendezvous score" then "over it, by score". Each
// candidate gets one uint64 key whose top bit says under and whose other
// bits order by score, so one top-two tracker does the whole job. Within a
// weight class the rendezvous order is the raw hash order, so candidates
// are first kept per class by hash and only each class's two leaders get
// a weighted score (a logarithm).
type ranking struct {
	f     *Fleet
	sp    *span
	title uint64
	bound float64
	class [maxClasses]best2 // by side and raw hash
	all   best2             // by side and weighted score
}

const underBit = 1 << 63

func (r *ranking) reset() {
	for c := range r.class {
		r.class[c].reset()
	}
	r.all.reset()
}

// offer considers appliance j, a, with load l.
func (r *ranking) offer(j int32, a *app, l float64) {
	var side uint64
	if l < r.bound*a.weight {
		side = underBit
	}
	if r.sp.classes == 0 {
		r.all.offer(j, side|scoreKey(r.title, a.key, a.weight))
		return
	}
	r.class[a.class].offer(j, side|rendezvous.Mix(r.title, a.key)>>1)
}

// scoreKey is the weighted rendezvous score as an integer of the same
// order (a positive float's bits are), below underBit.
func scoreKey(title, key uint64, w float64) uint64 {
	return math.Float64bits(rendezvous.Score(title, key, w))
}

// result merges the class leaders by weighted score and returns the
// primary and second.
func (r *ranking) result() (first, second int32) {
	switch r.sp.classes {
	case 0:
	case 1:
		r.all = r.class[0]
	default:
		for c := uint8(0); c < r.sp.classes; c++ {
			b := &r.class[c]
			w := r.sp.weights[c]
			for _, e := range [2]struct {
				j int32
				k uint64
			}{{b.i, b.ki}, {b.j, b.kj}} {
				if e.j >= 0 {
					r.all.offer(e.j, e.k&underBit|scoreKey(r.title, r.f.apps[e.j].key, w))
				}
			}
		}
	}
	return r.all.i, r.all.j
}

// best2 keeps the two highest keys offered; ties go to the earlier offer.
type best2 struct {
	i, j   int32
	ki, kj uint64
}

func (b *best2) reset() { b.i, b.j = -1, -1 }

func (b *best2) offer(x int32, k uint64) {
	switch {
	case b.i < 0 || k > b.ki:
		b.j, b.kj = b.i, b.ki
		b.i, b.ki = x, k
	case b.j < 0 || k > b.kj:
		b.j, b.kj = x, k
	}
}
