package rules

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/controlplane/fsm"
)

// routes is the Known of the tests.
var routes = RouteTable{
	"GET /v1/search":   "search",
	"GET /v1/playback": "playback",
	"GET /v1/titles":   "list_titles",
}

func decodeRule(t *testing.T, s string) *fsm.Rule {
	t.Helper()
	var r fsm.StrictRule
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	r.ID = "r1"
	return &r.Rule
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		json string
		want string // "" valid; else a part of the error
	}{
		{"drain appliance", `{"kind":"drain","appliance":"a7"}`, ""},
		{"drain site, old action key", `{"action":"drain","site":"s1"}`, ""},
		{"drain both", `{"kind":"drain","appliance":"a7","site":"s1"}`, "not both"},
		{"drain neither", `{"kind":"drain"}`, "name an appliance or a site"},
		{"drain bad id", `{"kind":"drain","site":"s 1"}`, "drain: "},
		{"no kind", `{"site":"s1"}`, "kind is required"},
		{"unknown kind", `{"kind":"block"}`, `kind "block" is unknown`},
		{"field of another kind", `{"kind":"drain","site":"s1","percent":5}`, "field percent does not apply to a drain rule"},
		{"canary", `{"kind":"canary","title":"*","percent":5,"target":{"appliances":["a7"]}}`, ""},
		{"canary one title to a site", `{"kind":"canary","title":"t1","percent":0.5,"target":{"site":"s2"}}`, ""},
		{"canary 120", `{"kind":"canary","title":"*","percent":120,"target":{"site":"s2"}}`, "canary: percent 120 is not in (0, 100]"},
		{"canary 0", `{"kind":"canary","title":"*","target":{"site":"s2"}}`, "canary: percent 0 is not in (0, 100]"},
		{"canary too fine", `{"kind":"canary","title":"*","percent":0.001,"target":{"site":"s2"}}`, "resolution"},
		{"canary no title", `{"kind":"canary","percent":5,"target":{"site":"s2"}}`, "title is required"},
		{"canary bad title", `{"kind":"canary","title":"a/b","percent":5,"target":{"site":"s2"}}`, "canary: title"},
		{"canary no target", `{"kind":"canary","title":"*","percent":5}`, "target is required"},
		{"canary empty target", `{"kind":"canary","title":"*","percent":5,"target":{}}`, "target names no appliance and no site"},
		{"canary both targets", `{"kind":"canary","title":"*","percent":5,"target":{"site":"s2","appliances":["a1"]}}`, "both a site and appliances"},
		{"canary twice one appliance", `{"kind":"canary","title":"*","percent":5,"target":{"appliances":["a1","a1"]}}`, "appliance a1 twice"},
		{"route header", `{"kind":"route","match":{"header":"X-Fillcast-Beta","value":"1"},"target":{"site":"s2"}}`, ""},
		{"route prefix", `{"kind":"route","match":{"prefix":"10.9.0.0/16"},"target":{"appliances":["a1","a2"]}}`, ""},
		{"route both", `{"kind":"route","match":{"header":"X-Beta","prefix":"2001:db8::/32"},"target":{"site":"s2"}}`, ""},
		{"route no match", `{"kind":"route","match":{},"target":{"site":"s2"}}`, "route: match needs a header or a prefix"},
		{"route bad header", `{"kind":"route","match":{"header":"X Beta"},"target":{"site":"s2"}}`, "not a valid header name"},
		{"route value alone", `{"kind":"route","match":{"value":"1","prefix":"10.0.0.0/8"},"target":{"site":"s2"}}`, "needs a header"},
		{"route bad cidr", `{"kind":"route","match":{"prefix":"10.9.0.0/33"},"target":{"site":"s2"}}`, `prefix "10.9.0.0/33" is not a CIDR prefix`},
		{"route host bits", `{"kind":"route","match":{"prefix":"10.9.1.0/16"},"target":{"site":"s2"}}`, "did you mean 10.9.0.0/16"},
		{"route no target", `{"kind":"route","match":{"prefix":"10.9.0.0/16"}}`, "route: target is required"},
		{"static", `{"kind":"static","route":"GET /v1/search","status":503,"body":{"error":"search is down for maintenance"},"retry_after":120}`, ""},
		{"static no body", `{"kind":"static","route":"GET /v1/search","status":503}`, ""},
		{"static unknown route", `{"kind":"static","route":"GET /v1/nope","status":503}`, `static: route "GET /v1/nope" is not a route of this API`},
		{"static status", `{"kind":"static","route":"GET /v1/search","status":700}`, "status 700 is outside 200–599"},
		{"static body array", `{"kind":"static","route":"GET /v1/search","status":503,"body":[1]}`, "body must be a JSON object"},
		{"static body null", `{"kind":"static","route":"GET /v1/search","status":503,"body":null}`, "body must be a JSON object"},
		{"static 204 body", `{"kind":"static","route":"GET /v1/search","status":204,"body":{}}`, "cannot carry a body"},
		{"static negative retry", `{"kind":"static","route":"GET /v1/search","status":503,"retry_after":-1}`, "retry_after -1 is negative"},
		{"limit", `{"kind":"limit","route":"search","class":"anonymous","per_second":5,"burst":10}`, ""},
		{"limit class only", `{"kind":"limit","class":"viewer","per_second":50,"burst":100}`, ""},
		{"limit without burst", `{"kind":"limit","class":"viewer","per_second":50}`, "burst 0"},
		{"limit block", `{"kind":"limit","route":"search"}`, ""},
		{"limit neither", `{"kind":"limit","per_second":5}`, "needs a route name, a class, or both"},
		{"limit unknown route", `{"kind":"limit","route":"nope","per_second":5}`, `route "nope" is not a route name`},
		{"limit unknown class", `{"kind":"limit","class":"robot","per_second":5}`, `class "robot" is unknown`},
		{"limit negative", `{"kind":"limit","class":"viewer","per_second":-1}`, "per_second -1 is negative"},
		{"limit negative burst", `{"kind":"limit","class":"viewer","burst":-1}`, "burst must be 0 too"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := decodeRule(t, tc.json)
			err := Validate(r, routes)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v, want ok", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want an error with %q", err, tc.want)
			case err != nil && !errors.Is(err, fsm.ErrInvalid):
				t.Fatalf("Validate = %v, want it to wrap fsm.ErrInvalid", err)
			case err == nil:
				if ferr := (fsm.Command{Op: fsm.OpPutRule, Rule: r}).Validate(); ferr != nil {
					t.Fatalf("valid rule refused by the fsm: %v", ferr)
				}
			}
		})
	}
	if err := Validate(&fsm.Rule{ID: "squeeze-q1", Kind: fsm.RuleDrain, Site: "s1"}, routes); err == nil || !strings.Contains(err.Error(), "squeeze") {
		t.Errorf("squeeze- id: %v, want refused", err)
	}
	if err := Validate(&fsm.Rule{ID: "r", Kind: fsm.RuleStatic, Route: "GET /anything", Status: 503}, nil); err != nil {
		t.Errorf("nil Known: %v, want route unchecked", err)
	}
}

func TestStaticAndLimits(t *testing.T) {
	t.Parallel()
	set := Compile(map[string]*fsm.Rule{
		"b-down": {ID: "b-down", Kind: fsm.RuleStatic, Route: "GET /v1/search", Status: 503, Body: json.RawMessage(`{"error":"search is down for maintenance"}`), RetryAfter: 120},
		"a-down": {ID: "a-down", Kind: fsm.RuleStatic, Route: "GET /v1/search", Status: 500},
		"c-gone": {ID: "c-gone", Kind: fsm.RuleStatic, Route: "GET /v1/titles", Status: 204},
		"d-lim":  {ID: "d-lim", Kind: fsm.RuleLimit, Route: "search", Class: "anonymous", PerSecond: 5, Burst: 10},
		"c-lim":  {ID: "c-lim", Kind: fsm.RuleLimit, Class: "viewer", PerSecond: 50, Burst: 100},
		"drain":  {ID: "drain", Kind: fsm.RuleDrain, Site: "s1"},
	})
	tests := []struct {
		pattern    string
		status     int
		body       string
		retryAfter int
		ok         bool
	}{
		{"GET /v1/search", 500, `{"error":"Internal Server Error"}`, 0, true}, // the lower id answers
		{"GET /v1/titles", 204, "", 0, true},
		{"GET /v1/playback", 0, "", 0, false},
	}
	for _, tc := range tests {
		status, body, ra, ok := set.Static(tc.pattern)
		if status != tc.status || string(body) != tc.body || ra.Seconds() != float64(tc.retryAfter) || ok != tc.ok {
			t.Errorf("Static(%q) = %d %s %v %v, want %d %s %ds %v", tc.pattern, status, body, ra, ok, tc.status, tc.body, tc.retryAfter, tc.ok)
		}
	}
	delete503 := Compile(map[string]*fsm.Rule{"b-down": {ID: "b-down", Kind: fsm.RuleStatic, Route: "GET /v1/search", Status: 503, Body: json.RawMessage(`{"error":"down"}`), RetryAfter: 120}})
	if status, body, ra, ok := delete503.Static("GET /v1/search"); status != 503 || string(body) != `{"error":"down"}` || ra.Seconds() != 120 || !ok {
		t.Errorf("Static = %d %s %v %v", status, body, ra, ok)
	}
	want := []LimitRule{{ID: "c-lim", Class: "viewer", PerSecond: 50, Burst: 100}, {ID: "d-lim", Route: "search", Class: "anonymous", PerSecond: 5, Burst: 10}}
	if got := set.Limits(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Limits() = %+v, want %+v", got, want)
	}
	if set.Steers() {
		t.Error("a set without canary or route rules Steers")
	}
	var none *Set
	if _, _, _, ok := none.Static("GET /v1/search"); ok || none.Limits() != nil || none.Steers() {
		t.Error("the nil Set has rules")
	}
}
