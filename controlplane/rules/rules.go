// Package rules gives the control plane's runtime rules their meaning.
// Rules live in the replicated state (fsm.Rule, one record per rule, put
// and deleted through raft by PUT and DELETE /v1/rules/{id}); this
// package checks a rule before the API proposes it (Validate) and turns
// the state's rules into an immutable Set that a node rebuilds on every
// rule change (Compile) and reads lock-free from an atomic pointer on
// every request:
//
//   - drain: {"kind":"drain","appliance":"a7"} or {"kind":"drain","site":"s1"}
//     takes an appliance or a site out of steering. The fleet applies it
//     (controlplane/fleet) when it builds the steering snapshot.
//   - canary: {"kind":"canary","title":"*","percent":5,"target":{"appliances":["a7"]}}
//     sends that share of new playbacks of the title ("*": any title) to
//     the target, a group of appliances or a site ({"site":"s2"}). A
//     session is in or out of the share by a hash of the rule id and the
//     session, the same on every node and across restarts (Set.Steer).
//   - route: {"kind":"route","match":{"header":"X-Fillcast-Beta","value":"1"},"target":{"site":"s2"}}
//     or "match":{"prefix":"10.9.0.0/16"} steers the matching requests to
//     the target's appliances, chosen by steering's bounded-load hashing.
//   - static: {"kind":"static","route":"GET /v1/search","status":503,"body":{"error":"..."},"retry_after":120}
//     makes the gateway answer that route itself (Set.Static).
//   - limit: {"kind":"limit","route":"search","class":"anonymous","per_second":5,"burst":10}
//     is a token bucket for a gateway route name, a principal class, or
//     a class on a route (Set.Limits).
//
// The fsm's own check of a rule stays structural, so every node applies
// the log alike; Validate adds what needs the API's routes and gives
// each refusal as a sentence an operator can act on.
package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/ratelimit"
)

// SqueezePrefix starts the ids of the canary rules that squeeze tests
// put; Validate keeps operators' rules out of it.
const SqueezePrefix = "squeeze-"

// Limits of a rule's size, so that every node can keep every rule.
const (
	maxTargetAppliances = 64
	maxHeaderValue      = 1024
	maxBody             = 16 << 10
	maxRetryAfter       = 86400
)

// Known is what Validate needs to know of the API whose rules it checks.
// Targets are not in it: a canary or route rule may name an appliance or
// a site that is registered later, and steering skips targets it does not
// know or that are not serving.
type Known interface {
	// RoutePattern reports whether p is the pattern of a route that a
	// static rule may answer, as registered ("GET /v1/search"). The API
	// answers false for the routes that manage rules, so that no rule
	// locks operators out of deleting it.
	RoutePattern(p string) bool
	// RouteName reports whether n names a route that a limit rule may
	// limit ("search"); false for the routes that manage rules.
	RouteName(n string) bool
}

// RouteTable is a Known: route patterns mapped to their names, such as
// the API builds from its gateway's routes.
type RouteTable map[string]string

var _ Known = RouteTable(nil)

// RoutePattern reports whether p is a pattern of the table.
func (t RouteTable) RoutePattern(p string) bool { _, ok := t[p]; return ok }

// RouteName reports whether n is a name in the table.
func (t RouteTable) RouteName(n string) bool {
	for _, name := range t {
		if name == n {
			return true
		}
	}
	return false
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("rules: %w: %s", fsm.ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks a rule as an operator put it, before the API proposes
// it: the kind, that only the kind's fields are set, and each field's
// value. Errors wrap fsm.ErrInvalid and read as a reason for a 400. A
// nil known skips the checks of route patterns and names. A rule that
// Validate accepts also passes the fsm's structural check.
func Validate(r *fsm.Rule, known Known) error {
	if r == nil {
		return invalid("no rule")
	}
	if err := fillcast.ValidateTitleID(r.ID); err != nil {
		return invalid("id: %v", err)
	}
	if strings.HasPrefix(r.ID, SqueezePrefix) {
		return invalid("id %q: ids starting with %q belong to squeeze tests; choose another", r.ID, SqueezePrefix)
	}
	if err := checkFields(r); err != nil {
		return err
	}
	switch r.Kind {
	case fsm.RuleDrain:
		return validateDrain(r)
	case fsm.RuleCanary:
		return validateCanary(r)
	case fsm.RuleRoute:
		return validateRoute(r)
	case fsm.RuleStatic:
		return validateStatic(r, known)
	case fsm.RuleLimit:
		return validateLimit(r, known)
	}
	return nil // checkFields refused other kinds
}

// fields lists each kind-specific field: its JSON name, whether r sets
// it, and the kinds it belongs to.
var fields = [...]struct {
	name  string
	set   func(r *fsm.Rule) bool
	kinds string
}{
	{"appliance", func(r *fsm.Rule) bool { return r.Appliance != "" }, "drain"},
	{"site", func(r *fsm.Rule) bool { return r.Site != "" }, "drain"},
	{"title", func(r *fsm.Rule) bool { return r.Title != "" }, "canary"},
	{"percent", func(r *fsm.Rule) bool { return r.Percent != 0 }, "canary"},
	{"match", func(r *fsm.Rule) bool { return r.Match != nil }, "route"},
	{"target", func(r *fsm.Rule) bool { return r.Target != nil }, "canary route"},
	{"route", func(r *fsm.Rule) bool { return r.Route != "" }, "static limit"},
	{"status", func(r *fsm.Rule) bool { return r.Status != 0 }, "static"},
	{"body", func(r *fsm.Rule) bool { return len(r.Body) > 0 }, "static"},
	{"retry_after", func(r *fsm.Rule) bool { return r.RetryAfter != 0 }, "static"},
	{"class", func(r *fsm.Rule) bool { return r.Class != "" }, "limit"},
	{"per_second", func(r *fsm.Rule) bool { return r.PerSecond != 0 }, "limit"},
	{"burst", func(r *fsm.Rule) bool { return r.Burst != 0 }, "limit"},
}

func checkFields(r *fsm.Rule) error {
	switch r.Kind {
	case fsm.RuleDrain, fsm.RuleCanary, fsm.RuleRoute, fsm.RuleStatic, fsm.RuleLimit:
	case "":
		return invalid("kind is required: drain, canary, route, static or limit")
	default:
		return invalid("kind %q is unknown: want drain, canary, route, static or limit", r.Kind)
	}
	for _, f := range fields {
		if f.set(r) && !strings.Contains(f.kinds, r.Kind) {
			return invalid("%s: field %s does not apply to a %s rule (it belongs to %s)", r.Kind, f.name, r.Kind, strings.ReplaceAll(f.kinds, " ", " and "))
		}
	}
	return nil
}

func validateDrain(r *fsm.Rule) error {
	switch {
	case r.Appliance == "" && r.Site == "":
		return invalid("drain: name an appliance or a site")
	case r.Appliance != "" && r.Site != "":
		return invalid("drain: name an appliance or a site, not both (use two rules)")
	}
	if err := fillcast.ValidateTitleID(r.Appliance + r.Site); err != nil {
		return invalid("drain: %v", err)
	}
	return nil
}

func validateCanary(r *fsm.Rule) error {
	switch {
	case r.Title == "":
		return invalid("canary: title is required: a title id, or \"*\" for every title")
	case r.Title != "*":
		if err := fillcast.ValidateTitleID(r.Title); err != nil {
			return invalid("canary: title: %v (or \"*\" for every title)", err)
		}
	}
	if !(r.Percent > 0 && r.Percent <= 100) {
		return invalid("canary: percent %v is not in (0, 100]", r.Percent)
	}
	if r.Percent < 0.01 {
		return invalid("canary: percent %v is below the resolution of 0.01", r.Percent)
	}
	return validateTarget(r)
}

func validateTarget(r *fsm.Rule) error {
	t := r.Target
	switch {
	case t == nil:
		return invalid(`%s: target is required: {"site":"s2"} or {"appliances":["a1","a2"]}`, r.Kind)
	case t.Site == "" && len(t.Appliances) == 0:
		return invalid(`%s: target names no appliance and no site: give {"site":"s2"} or {"appliances":["a1"]}`, r.Kind)
	case t.Site != "" && len(t.Appliances) > 0:
		return invalid("%s: target names both a site and appliances: choose one", r.Kind)
	case len(t.Appliances) > maxTargetAppliances:
		return invalid("%s: target names %d appliances: at most %d", r.Kind, len(t.Appliances), maxTargetAppliances)
	}
	if t.Site != "" {
		if err := fillcast.ValidateTitleID(t.Site); err != nil {
			return invalid("%s: target site: %v", r.Kind, err)
		}
	}
	for i, a := range t.Appliances {
		if err := fillcast.ValidateTitleID(a); err != nil {
			return invalid("%s: target appliances[%d]: %v", r.Kind, i, err)
		}
		for _, b := range t.Appliances[:i] {
			if a == b {
				return invalid("%s: target names appliance %s twice", r.Kind, a)
			}
		}
	}
	return nil
}

func validateRoute(r *fsm.Rule) error {
	m := r.Match
	if m == nil || (m.Header == "" && m.Prefix == "") {
		return invalid("route: match needs a header or a prefix (or both, which must both match)")
	}
	if m.Header != "" && !isToken(m.Header) {
		return invalid("route: match header %q is not a valid header name", m.Header)
	}
	if m.Value != "" && m.Header == "" {
		return invalid("route: match value %q needs a header", m.Value)
	}
	if len(m.Value) > maxHeaderValue || strings.ContainsFunc(m.Value, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return invalid("route: match value must be printable and at most %d bytes", maxHeaderValue)
	}
	if m.Prefix != "" {
		p, err := netip.ParsePrefix(m.Prefix)
		if err != nil {
			return invalid("route: match prefix %q is not a CIDR prefix such as 10.9.0.0/16", m.Prefix)
		}
		if p != p.Masked() {
			return invalid("route: match prefix %q has host bits set (did you mean %s?)", m.Prefix, p.Masked())
		}
	}
	return validateTarget(r)
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), what a
// header name must be.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

func validateStatic(r *fsm.Rule, known Known) error {
	switch {
	case r.Route == "":
		return invalid(`static: route is required: a route pattern such as "GET /v1/search"`)
	case known != nil && !known.RoutePattern(r.Route):
		return invalid("static: route %q is not a route of this API (or one a rule may not answer)", r.Route)
	case r.Status < 200 || r.Status > 599:
		return invalid("static: status %d is outside 200–599", r.Status)
	case r.RetryAfter < 0:
		return invalid("static: retry_after %d is negative: want seconds, 0 for none", r.RetryAfter)
	case r.RetryAfter > maxRetryAfter:
		return invalid("static: retry_after %d is more than a day (%d s)", r.RetryAfter, maxRetryAfter)
	}
	if len(r.Body) == 0 {
		return nil
	}
	if r.Status == 204 || r.Status == 304 {
		return invalid("static: status %d cannot carry a body", r.Status)
	}
	if len(r.Body) > maxBody {
		return invalid("static: body is %d bytes: at most %d", len(r.Body), maxBody)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &obj); err != nil || obj == nil {
		return invalid(`static: body must be a JSON object, such as {"error":"search is down for maintenance"}`)
	}
	return nil
}

func validateLimit(r *fsm.Rule, known Known) error {
	if r.Route == "" && r.Class == "" {
		return invalid("limit: needs a route name, a class, or both")
	}
	if r.Route != "" && known != nil && !known.RouteName(r.Route) {
		return invalid("limit: route %q is not a route name of this API (or one a rule may not limit)", r.Route)
	}
	switch r.Class {
	case "", string(ratelimit.ClassViewer), string(ratelimit.ClassAPIKey), string(ratelimit.ClassAppliance), string(ratelimit.ClassAnonymous):
	default:
		return invalid("limit: class %q is unknown: want viewer, apikey, appliance or anonymous", r.Class)
	}
	if math.IsNaN(r.PerSecond) || r.PerSecond < 0 {
		return invalid("limit: per_second %v is negative: want requests per second (delete the rule to stop limiting)", r.PerSecond)
	}
	// The shapes the rate limiter enforces, so that no rule is taken
	// and then skipped.
	if err := (ratelimit.Limit{PerSecond: r.PerSecond, Burst: r.Burst}).Validate(); err != nil {
		return invalid("limit: %v", strings.TrimPrefix(err.Error(), "ratelimit: "))
	}
	return nil
}
