package rules

import (
	"net/netip"

	"github.com/fillcast/fillcast/steering"
)

// SteerRequest is what the steering rules look at in a playback request.
type SteerRequest struct {
	// Title is the title played.
	Title string
	// Session identifies the viewing session (the stream id): a canary
	// decides by it, so one session stays on one side. Empty means the
	// client's address stands for it.
	Session string
	// Client is the player's address, matched by route prefixes.
	Client netip.Addr
	// Header returns a request header's value ("" when absent), such as
	// http.Header.Get; nil means no headers.
	Header func(name string) string
	// DryRun leaves steering's recent-assignment counters alone, as
	// steering.Request.DryRun.
	DryRun bool
}

// Steer applies the steering rules to got, steering's answer for req
// (primary, second, parent, origin), and returns the answer to give,
// written over got's array (give got a capacity of steering.MaxTargets
// and nothing is allocated).
//
// Route rules come first: the first, in id order, that matches the
// request and whose target has an appliance serving the title puts that
// target's appliances first, chosen by steering's bounded-load hashing
// (Fleet.SteerSite, Fleet.SteerGroup), the rest of the answer after them.
// Then canary rules: the first, in id order, whose title matches, whose
// share takes the session (a hash of the rule id and the session, in
// 10,000 buckets) and whose target has a serving appliance puts that
// appliance (one of the target's, by the session's hash) first. Targets
// unknown to the fleet, draining or silent are skipped: the answer stands.
// Roles are given anew (steering.Merge). With no canary or route rule it
// returns got as it is, at the cost of a nil check.
//
// When a rule changes the answer, the primary Steer counted as a recent
// player is counted in excess until its count decays (seconds).
func (s *Set) Steer(fl *steering.Fleet, req SteerRequest, got []steering.Target) []steering.Target {
	if !s.Steers() || fl == nil {
		return got
	}
	var (
		orig    [steering.MaxTargets]steering.Target
		lead    [steering.MaxTargets]steering.Target
		out     = got
		changed bool
	)
	sreq := steering.Request{Client: req.Client, Title: req.Title, DryRun: req.DryRun}
	for i := range s.routes {
		r := &s.routes[i]
		if !r.matches(&req) {
			continue
		}
		var l []steering.Target
		if r.site != "" {
			l = fl.SteerSite(lead[:0], sreq, r.site)
		} else {
			l = fl.SteerGroup(lead[:0], sreq, r.apps)
		}
		if len(l) > 0 {
			rest := orig[:copy(orig[:], out)]
			out, changed = steering.Merge(got[:0], l, rest), true
			break
		}
	}
	if len(s.canaries) > 0 {
		session := sessionHash(&req)
		for i := range s.canaries {
			c := &s.canaries[i]
			if c.title != "" && c.title != req.Title {
				continue
			}
			h := canaryHash(c.id, session)
			if h%10000 >= c.threshold {
				continue
			}
			var t steering.Target
			var ok bool
			if c.site != "" {
				t, ok = fl.SiteTarget(c.site, h)
			} else {
				t, ok = fl.GroupTarget(c.apps, h)
			}
			if ok {
				lead[0] = t
				rest := orig[:copy(orig[:], out)]
				out, changed = steering.Merge(got[:0], lead[:1], rest), true
				break
			}
		}
	}
	if !changed {
		return got
	}
	return out
}

func (r *routeRule) matches(req *SteerRequest) bool {
	if r.header != "" {
		if req.Header == nil {
			return false
		}
		v := req.Header(r.header)
		if v == "" || (r.value != "" && v != r.value) {
			return false
		}
	}
	if r.prefix.IsValid() {
		a := req.Client
		if r.prefix.Addr().Is4() {
			a = a.Unmap()
		}
		if !r.prefix.Contains(a) {
			return false
		}
	}
	return true
}

// FNV-1a, 64 bits: a hash fixed by its definition, so every node and
// every restart puts a session on the same side of a canary.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// sessionHash hashes the session id, or the client's address without
// one.
func sessionHash(req *SteerRequest) uint64 {
	h := uint64(fnvOffset)
	if req.Session != "" {
		for i := 0; i < len(req.Session); i++ {
			h = (h ^ uint64(req.Session[i])) * fnvPrime
		}
		return h
	}
	b := req.Client.Unmap().As16()
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

// canaryHash combines the rule id with the session's hash, so that two
// canaries choose their sessions independently, and finishes with a
// 64-bit mixer (MurmurHash3's) so that the low digits, which pick the
// bucket, depend on every input byte.
func canaryHash(rule string, session uint64) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(rule); i++ {
		h = (h ^ uint64(rule[i])) * fnvPrime
	}
	h ^= session
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
