package rules

import (
	"encoding/json"
	"math"
	"net/http"
	"net/netip"
	"net/textproto"
	"sort"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/ratelimit"
)

// Set is the state's rules compiled for the requests that read them: a
// map of static answers, the limits, and the steering rules in id order.
// It is immutable: a node compiles a new one on every rule change and
// publishes it with an atomic.Pointer. The nil *Set has no rules.
type Set struct {
	static   map[string]staticAnswer
	limits   []LimitRule
	routes   []routeRule
	canaries []canaryRule
}

type staticAnswer struct {
	status     int
	body       []byte
	retryAfter time.Duration
}

// LimitRule is a limit rule for the gateway's rate limiter: a token
// bucket of PerSecond tokens a second holding at most Burst, for the
// route named Route ("" any route) and the principal class Class (""
// any class; see ratelimit.ClassOf). PerSecond and Burst both 0 block.
type LimitRule struct {
	ID        string
	Route     string
	Class     string
	PerSecond float64
	Burst     int
}

type routeRule struct {
	id     string
	header string // canonical; "" for none
	value  string // "" any non-empty value
	prefix netip.Prefix
	target
}

type canaryRule struct {
	id        string
	title     string // "" any
	threshold uint64 // of 10,000 buckets, those in the share
	target
}

// target is a rule's site or appliance group.
type target struct {
	site string
	apps []string
}

// Compile builds the Set of the state's rules. Rules that do not make
// sense (which Validate keeps out, but the state may hold from older
// versions) are left out rather than refused: a node must always have a
// Set. Of two static rules for one route, the lower id answers.
func Compile(rules map[string]*fsm.Rule) *Set {
	ids := make([]string, 0, len(rules))
	for id := range rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	s := &Set{static: map[string]staticAnswer{}}
	for _, id := range ids {
		r := rules[id]
		if r == nil {
			continue
		}
		switch r.Kind {
		case fsm.RuleStatic:
			if _, dup := s.static[r.Route]; !dup && r.Status >= 200 && r.Status <= 599 {
				s.static[r.Route] = compileStatic(r)
			}
		case fsm.RuleLimit:
			if r.PerSecond >= 0 && (ratelimit.Limit{PerSecond: r.PerSecond, Burst: r.Burst}).Validate() == nil {
				s.limits = append(s.limits, LimitRule{ID: r.ID, Route: r.Route, Class: r.Class, PerSecond: r.PerSecond, Burst: r.Burst})
			}
		case fsm.RuleRoute:
			if rr, ok := compileRoute(r); ok {
				s.routes = append(s.routes, rr)
			}
		case fsm.RuleCanary:
			if r.Target == nil || !(r.Percent > 0) {
				continue
			}
			c := canaryRule{id: r.ID, title: r.Title, threshold: uint64(math.Round(math.Min(r.Percent, 100) * 100)), target: compileTarget(r.Target)}
			if c.title == "*" {
				c.title = ""
			}
			s.canaries = append(s.canaries, c)
		}
	}
	return s
}

func compileStatic(r *fsm.Rule) staticAnswer {
	a := staticAnswer{status: r.Status, body: r.Body, retryAfter: time.Duration(max(r.RetryAfter, 0)) * time.Second}
	if len(a.body) == 0 && r.Status != http.StatusNoContent && r.Status != http.StatusNotModified {
		a.body, _ = json.Marshal(map[string]string{"error": http.StatusText(r.Status)})
	}
	return a
}

func compileRoute(r *fsm.Rule) (routeRule, bool) {
	m := r.Match
	if m == nil || r.Target == nil || (m.Header == "" && m.Prefix == "") {
		return routeRule{}, false
	}
	rr := routeRule{id: r.ID, value: m.Value, target: compileTarget(r.Target)}
	if m.Header != "" {
		rr.header = textproto.CanonicalMIMEHeaderKey(m.Header)
	}
	if m.Prefix != "" {
		p, err := netip.ParsePrefix(m.Prefix)
		if err != nil {
			return routeRule{}, false
		}
		rr.prefix = p.Masked()
	}
	return rr, true
}

func compileTarget(t *fsm.RuleTarget) target {
	return target{site: t.Site, apps: append([]string(nil), t.Appliances...)}
}

// Static returns the answer of the static rule for the route pattern
// ("GET /v1/search"), or false when there is none. body is shared: do
// not modify it. A map lookup; it allocates nothing.
func (s *Set) Static(pattern string) (status int, body []byte, retryAfter time.Duration, ok bool) {
	if s == nil {
		return 0, nil, 0, false
	}
	a, ok := s.static[pattern]
	return a.status, a.body, a.retryAfter, ok
}

// Limits returns the limit rules in id order. The slice is shared: do
// not modify it.
func (s *Set) Limits() []LimitRule {
	if s == nil {
		return nil
	}
	return s.limits
}

// Steers reports whether the set has a canary or route rule, that is
// whether Steer can change an answer.
func (s *Set) Steers() bool { return s != nil && len(s.routes)+len(s.canaries) > 0 }
