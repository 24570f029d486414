package fsm

import (
	"bytes"
	"encoding/json"
	"math"
	"time"
)

// Rule kinds.
const (
	// RuleDrain takes an appliance, or every appliance of a site, out of
	// steering without touching the appliances.
	RuleDrain = "drain"
	// RuleCanary sends a share of the new playbacks of a title (or of
	// every title) to a target.
	RuleCanary = "canary"
	// RuleRoute steers the requests that match a header or a client
	// prefix to a target.
	RuleRoute = "route"
	// RuleStatic makes the gateway answer an API route from the rule.
	RuleStatic = "static"
	// RuleLimit rate-limits a gateway route, a class of principal, or a
	// class on a route.
	RuleLimit = "limit"
)

// RuleLogLen is how many rule changes the audit log keeps.
const RuleLogLen = 1000

// maxRuleBody bounds a static rule's body, which every node keeps in
// memory and every snapshot carries.
const maxRuleBody = 16 << 10

// Rule is a runtime rule. Kind says which of the other fields count; the
// package controlplane/rules documents and checks them in full. In JSON a
// rule written before kinds existed has "action" instead of "kind":
// decoding reads it as the kind, so old snapshots, log entries and
// clients keep working; encoding writes "kind" only.
type Rule struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`

	// Appliance or Site is what a drain rule drains: exactly one is set.
	Appliance string `json:"appliance,omitempty"`
	Site      string `json:"site,omitempty"`

	// Title is a canary's title id, "*" for any; Percent is the share of
	// new playbacks, in (0, 100], that go to Target.
	Title   string  `json:"title,omitempty"`
	Percent float64 `json:"percent,omitempty"`

	// Match says which requests a route rule steers to Target.
	Match *RuleMatch `json:"match,omitempty"`
	// Target is where a canary or route rule sends players.
	Target *RuleTarget `json:"target,omitempty"`

	// Route is a static rule's route pattern ("GET /v1/search") or a
	// limit rule's route name ("search").
	Route string `json:"route,omitempty"`
	// Status, Body and RetryAfter (seconds) are a static rule's answer;
	// Body is a JSON object.
	Status     int             `json:"status,omitempty"`
	Body       json.RawMessage `json:"body,omitempty"`
	RetryAfter int             `json:"retry_after,omitempty"`

	// Class is a limit rule's principal class (viewer, apikey,
	// appliance, anonymous); PerSecond and Burst its token bucket.
	Class     string  `json:"class,omitempty"`
	PerSecond float64 `json:"per_second,omitempty"`
	Burst     int     `json:"burst,omitempty"`

	// UpdatedBy and Updated are who put the rule and when: set by the
	// API node that proposes the command, never taken from the client.
	UpdatedBy string    `json:"updated_by,omitempty"`
	Updated   time.Time `json:"updated,omitzero"`
}

// RuleMatch is what a route rule matches: a request header (Value ""
// matches any non-empty value) and/or a client prefix. Both set means
// both must match.
type RuleMatch struct {
	Header string `json:"header,omitempty"`
	Value  string `json:"value,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// RuleTarget is where a canary or route rule sends players: a site or a
// group of appliances, exactly one.
type RuleTarget struct {
	Site       string   `json:"site,omitempty"`
	Appliances []string `json:"appliances,omitempty"`
}

// ruleFields is Rule without its methods, so that decoding it does not
// recurse.
type ruleFields Rule

// ruleInput is a rule as found in JSON, with the key of old versions.
type ruleInput struct {
	ruleFields
	Action string `json:"action,omitempty"`
}

func (in *ruleInput) rule() Rule {
	r := Rule(in.ruleFields)
	if r.Kind == "" {
		r.Kind = in.Action
	}
	return r
}

// UnmarshalJSON decodes a rule, reading an old "action" key as the kind.
// Unknown keys are ignored, as in the rest of the state; clients' rules
// are decoded strictly through StrictRule.
func (r *Rule) UnmarshalJSON(b []byte) error {
	var in ruleInput
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*r = in.rule()
	return nil
}

// StrictRule decodes a rule as Rule does but refuses unknown keys: what
// the API decodes a client's rule into. (A type with its own
// UnmarshalJSON, as Rule, escapes a decoder's DisallowUnknownFields.)
type StrictRule struct {
	Rule
}

// UnmarshalJSON decodes a rule strictly, reading "action" as the kind.
func (s *StrictRule) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var in ruleInput
	if err := dec.Decode(&in); err != nil {
		return err
	}
	s.Rule = in.rule()
	return nil
}

// RuleChange is an entry of the audit log of rule changes.
type RuleChange struct {
	// Op is "put" or "delete".
	Op string `json:"op"`
	ID string `json:"id"`
	// Rule is the rule as put; nil for a deletion.
	Rule *Rule     `json:"rule,omitempty"`
	By   string    `json:"by,omitempty"`
	At   time.Time `json:"at,omitzero"`
}

// checkRule is the structural check every node applies to a rule before
// it enters the state: deterministic, and only what steering and the
// gateway rely on. controlplane/rules.Validate checks much more, with
// reasons meant for operators, before the API proposes a rule.
func checkRule(r *Rule) error {
	if r == nil || r.ID == "" || len(r.ID) > 128 {
		return invalid("rule needs an id of 1 to 128 bytes")
	}
	switch r.Kind {
	case RuleDrain:
		if (r.Appliance == "") == (r.Site == "") {
			return invalid("drain rule %s needs exactly one of appliance or site", r.ID)
		}
	case RuleCanary:
		if r.Title == "" || !(r.Percent > 0 && r.Percent <= 100) {
			return invalid("canary rule %s needs a title and a percent in (0, 100]", r.ID)
		}
		return checkTarget(r)
	case RuleRoute:
		if r.Match == nil || (r.Match.Header == "" && r.Match.Prefix == "") {
			return invalid("route rule %s needs a match header or prefix", r.ID)
		}
		return checkTarget(r)
	case RuleStatic:
		if r.Route == "" || r.Status < 200 || r.Status > 599 || r.RetryAfter < 0 || len(r.Body) > maxRuleBody {
			return invalid("static rule %s needs a route, a status in 200-599, a retry_after >= 0 and a body of at most %d bytes", r.ID, maxRuleBody)
		}
	case RuleLimit:
		if (r.Route == "" && r.Class == "") || !(r.PerSecond >= 0) || math.IsInf(r.PerSecond, 1) || r.Burst < 0 {
			return invalid("limit rule %s needs a route or a class, per_second >= 0 and burst >= 0", r.ID)
		}
	default:
		return invalid("rule %s: unknown kind %q", r.ID, r.Kind)
	}
	return nil
}

func checkTarget(r *Rule) error {
	t := r.Target
	if t == nil || (t.Site == "") == (len(t.Appliances) == 0) {
		return invalid("%s rule %s needs a target of a site or appliances", r.Kind, r.ID)
	}
	for _, a := range t.Appliances {
		if a == "" {
			return invalid("%s rule %s: target has an empty appliance id", r.Kind, r.ID)
		}
	}
	return nil
}

// logRule appends a change to the audit log, forgetting the oldest
// beyond RuleLogLen. Entries are never modified, so a snapshot's copy of
// the slice stays valid.
func logRule(s *State, e *RuleChange) {
	if len(s.RuleLog) >= RuleLogLen {
		s.RuleLog = append(s.RuleLog[:0:0], s.RuleLog[len(s.RuleLog)-RuleLogLen+1:]...)
	}
	s.RuleLog = append(s.RuleLog, e)
}

// applyRule applies OpPutRule and OpDeleteRule with their audit entries.
// Deleting a rule that is not there changes nothing and logs nothing.
func applyRule(s *State, c Command) {
	if c.Op == OpPutRule {
		s.Rules[c.Rule.ID] = c.Rule
		logRule(s, &RuleChange{Op: "put", ID: c.Rule.ID, Rule: c.Rule, By: c.Rule.UpdatedBy, At: c.Rule.Updated})
		return
	}
	if s.Rules[c.ID] == nil {
		return
	}
	delete(s.Rules, c.ID)
	logRule(s, &RuleChange{Op: "delete", ID: c.ID, By: c.By, At: c.At})
}

// withoutAudit returns c without who and when, which a node sets anew
// when a client retries a write: Stamp digests this, so that the retry
// is still recognised.
func (c Command) withoutAudit() Command {
	c.By, c.At = "", time.Time{}
	if c.Rule != nil {
		r := *c.Rule
		r.UpdatedBy, r.Updated = "", time.Time{}
		c.Rule = &r
	}
	if c.Squeeze != nil {
		q := *c.Squeeze
		q.StartedBy, q.Started, q.Updated = "", time.Time{}, time.Time{}
		c.Squeeze = &q
	}
	if c.Takedown != nil {
		td := *c.Takedown
		td.At, td.TokensUntil = time.Time{}, 0
		c.Takedown = &td
	}
	return c
}
