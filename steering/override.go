package steering

import "github.com/fillcast/fillcast/steering/rendezvous"

// This file serves runtime rules (package controlplane/rules) that
// override an answer of Steer: a route rule steers inside a chosen site
// or group of appliances, a canary rule puts one chosen appliance first.
// Like Steer, none of it locks or allocates.

// ApplianceTarget returns appliance id as a primary target when it is in
// the fleet and serving now: not draining and heard from within
// StaleAfter. Unlike Steer it does not ask whether the appliance holds a
// title: a canary sends it players for any title, which it fills on
// demand like any miss.
func (f *Fleet) ApplianceTarget(id string) (Target, bool) {
	j, ok := f.byID[id]
	if !ok || f.s.now().UnixNano() > f.apps[j].deadline {
		return Target{}, false
	}
	return f.target(j, RolePrimary), true
}

// SiteTarget returns the serving appliance of site (as ApplianceTarget
// means serving) that ranks first for key by rendezvous hashing, so one
// key (a session's hash) keeps landing on one appliance while the site's
// appliances stay the same.
func (f *Fleet) SiteTarget(site string, key uint64) (Target, bool) {
	si, ok := f.sites.byID[site]
	if !ok {
		return Target{}, false
	}
	sp := &f.spans[si]
	nowNS := f.s.now().UnixNano()
	best, bestScore := int32(-1), uint64(0)
	for j := sp.lo; j < sp.hi; j++ {
		if nowNS > f.apps[j].deadline {
			continue
		}
		if s := rendezvous.Mix(key, f.apps[j].key); best < 0 || s > bestScore {
			best, bestScore = j, s
		}
	}
	if best < 0 {
		return Target{}, false
	}
	return f.target(best, RolePrimary), true
}

// GroupTarget is SiteTarget over the listed appliances; unknown ids are
// skipped.
func (f *Fleet) GroupTarget(ids []string, key uint64) (Target, bool) {
	nowNS := f.s.now().UnixNano()
	best, bestScore := int32(-1), uint64(0)
	for _, id := range ids {
		j, ok := f.byID[id]
		if !ok || nowNS > f.apps[j].deadline {
			continue
		}
		if s := rendezvous.Mix(key, f.apps[j].key); best < 0 || s > bestScore {
			best, bestScore = j, s
		}
	}
	if best < 0 {
		return Target{}, false
	}
	return f.target(best, RolePrimary), true
}

// SteerSite appends to dst the primary and second appliance of site for
// req, chosen as Steer chooses inside a site: bounded-load rendezvous
// hashing among the healthy appliances that hold req.Title. Unless
// req.DryRun, the primary is counted as one more recent player. An
// unknown site, or one with no such appliance, appends nothing.
// req.Client is not used.
func (f *Fleet) SteerSite(dst []Target, req Request, site string) []Target {
	si, ok := f.sites.byID[site]
	if !ok {
		return dst
	}
	c := f.newChoice(req.Title)
	first, second := f.pick(si, &c)
	return f.appendPicked(dst, req, &c, first, second)
}

// SteerGroup is SteerSite over the listed appliances, wherever their
// sites; unknown ids are skipped.
func (f *Fleet) SteerGroup(dst []Target, req Request, ids []string) []Target {
	c := f.newChoice(req.Title)
	var total, weight float64
	n := 0
	for _, id := range ids {
		if j, ok := f.byID[id]; ok && f.apps[j].eligible(c.title, c.nowNS) {
			a := &f.apps[j]
			total += a.load + float64(a.recent.value(&f.s.recent, c.tick))
			weight += a.weight
			n++
		}
	}
	if n == 0 {
		return dst
	}
	// A group spans sites: rank by weighted score alone (no classes).
	r := ranking{f: f, sp: &span{}, title: c.title, bound: (1 + c.epsilon) * (total + 1) / weight}
	r.reset()
	for _, id := range ids {
		if j, ok := f.byID[id]; ok && f.apps[j].eligible(c.title, c.nowNS) {
			a := &f.apps[j]
			r.offer(j, a, a.load+float64(a.recent.value(&f.s.recent, c.tick)))
		}
	}
	first, second := r.result()
	if second == first {
		second = -1 // an id listed twice
	}
	return f.appendPicked(dst, req, &c, first, second)
}

func (f *Fleet) newChoice(title string) choice {
	now := f.s.now()
	return choice{
		title:   rendezvous.Key(title),
		nowNS:   now.UnixNano(),
		tick:    f.s.recent.tick(now),
		epsilon: f.s.cfg.Epsilon,
	}
}

func (f *Fleet) appendPicked(dst []Target, req Request, c *choice, first, second int32) []Target {
	if first < 0 {
		return dst
	}
	if !req.DryRun {
		f.apps[first].recent.add(&f.s.recent, c.tick, 1)
	}
	dst = append(dst, f.target(first, RolePrimary))
	if second >= 0 {
		dst = append(dst, f.target(second, RoleSecond))
	}
	return dst
}

// Merge appends to dst the targets of lead and then those of rest, each
// appliance once, at most MaxTargets in all with an origin (the first
// found) kept last, and returns the extended slice. Roles are given
// anew by position: the first target is the primary, the appliances of
// its site after it are seconds, other appliances parents. This is how a
// rule puts its own targets ahead of Steer's answer. dst must not
// overlap lead or rest; with room for MaxTargets it does not grow.
func Merge(dst, lead, rest []Target) []Target {
	start := len(dst)
	origin, hasOrigin := findOrigin(lead)
	if !hasOrigin {
		origin, hasOrigin = findOrigin(rest)
	}
	room := MaxTargets
	if hasOrigin {
		room--
	}
	for _, list := range [2][]Target{lead, rest} {
		for _, t := range list {
			if t.Role == RoleOrigin || len(dst)-start >= room || holds(dst[start:], t.Appliance) {
				continue
			}
			switch {
			case len(dst) == start:
				t.Role = RolePrimary
			case t.Site == dst[start].Site:
				t.Role = RoleSecond
			default:
				t.Role = RoleParent
			}
			dst = append(dst, t)
		}
	}
	if hasOrigin {
		dst = append(dst, origin)
	}
	return dst
}

func findOrigin(ts []Target) (Target, bool) {
	for _, t := range ts {
		if t.Role == RoleOrigin {
			return t, true
		}
	}
	return Target{}, false
}

func holds(ts []Target, appliance string) bool {
	for _, t := range ts {
		if t.Appliance == appliance {
			return true
		}
	}
	return false
}
