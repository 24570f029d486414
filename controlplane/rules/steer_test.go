package rules

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/steeringtest"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// testFleet has clients of 203.0.113.0/24 in s1 (appliances a1, a2),
// whose parent is ix (x1); s2 (b1, b2, and b3 draining) has no prefix.
func testFleet(t testing.TB) *steering.Fleet {
	t.Helper()
	clock := steeringtest.NewClock(t0)
	st, err := steering.New(steering.Config{Origin: "http://origin.example"}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	sites := []fillcast.Site{
		{ID: "ix", Kind: fillcast.SiteIX, Region: "eu"},
		{ID: "s1", Kind: fillcast.SiteISP, Region: "eu", Parent: "ix", Prefixes: []string{"203.0.113.0/24", "10.9.0.0/16"}},
		{ID: "s2", Kind: fillcast.SiteISP, Region: "eu", Parent: "ix"},
	}
	var apps []steering.Appliance
	for _, a := range [][2]string{{"a1", "s1"}, {"a2", "s1"}, {"b1", "s2"}, {"b2", "s2"}, {"b3", "s2"}, {"x1", "ix"}} {
		apps = append(apps, steering.Appliance{ID: a[0], Site: a[1], URL: "http://" + a[0] + ".example", LastSeen: t0, Draining: a[0] == "b3"})
	}
	fl, err := st.Build(sites, apps)
	if err != nil {
		t.Fatal(err)
	}
	return fl
}

var client = netip.MustParseAddr("203.0.113.7")

func steer(fl *steering.Fleet, set *Set, req SteerRequest, dst []steering.Target) []steering.Target {
	got := fl.Steer(dst[:0], steering.Request{Client: req.Client, Title: req.Title, DryRun: true})
	req.DryRun = true
	return set.Steer(fl, req, got)
}

func describe(ts []steering.Target) string {
	var parts []string
	for _, x := range ts {
		if x.Role == steering.RoleOrigin {
			parts = append(parts, "origin")
			continue
		}
		parts = append(parts, x.Role.String()+":"+x.Appliance)
	}
	return strings.Join(parts, " ")
}

func header(kv ...string) func(string) string {
	return func(name string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == name {
				return kv[i+1]
			}
		}
		return ""
	}
}

func TestCanaryShare(t *testing.T) {
	t.Parallel()
	fl := testFleet(t)
	set := Compile(map[string]*fsm.Rule{"c1": {ID: "c1", Kind: fsm.RuleCanary, Title: "*", Percent: 5, Target: &fsm.RuleTarget{Appliances: []string{"b1"}}}})
	dst := make([]steering.Target, 0, steering.MaxTargets)
	const sessions = 10000
	in := 0
	for i := range sessions {
		req := SteerRequest{Title: "t1", Session: fmt.Sprintf("session-%d", i), Client: client}
		got := steer(fl, set, req, dst)
		first := got[0].Appliance
		if first == "b1" {
			in++
			if got[0].Role != steering.RolePrimary || len(got) != steering.MaxTargets || got[len(got)-1].Role != steering.RoleOrigin {
				t.Fatalf("canaried answer %s", describe(got))
			}
		}
		for range 2 {
			if again := steer(fl, set, req, dst); again[0].Appliance != first {
				t.Fatalf("session %d went to %s, then to %s", i, first, again[0].Appliance)
			}
		}
	}
	if share := float64(in) / sessions * 100; math.Abs(share-5) > 1.5 {
		t.Errorf("canary took %.2f %% of sessions, want 5 ± 1.5", share)
	}
	// Another title's canary, and a site target: the session hash picks
	// among the site's serving appliances (not draining b3).
	set = Compile(map[string]*fsm.Rule{"c2": {ID: "c2", Kind: fsm.RuleCanary, Title: "t2", Percent: 100, Target: &fsm.RuleTarget{Site: "s2"}}})
	seen := map[string]int{}
	for i := range 200 {
		got := steer(fl, set, SteerRequest{Title: "t2", Session: fmt.Sprint(i), Client: client}, dst)
		seen[got[0].Appliance]++
		if other := steer(fl, set, SteerRequest{Title: "t1", Session: fmt.Sprint(i), Client: client}, dst); other[0].Site != "s1" {
			t.Fatalf("canary of t2 took a t1 session: %s", describe(other))
		}
	}
	if len(seen) != 2 || seen["b1"] == 0 || seen["b2"] == 0 {
		t.Errorf("site canary sent sessions to %v, want b1 and b2", seen)
	}
}

func TestSteerRules(t *testing.T) {
	t.Parallel()
	fl := testFleet(t)
	beta := &fsm.Rule{ID: "beta", Kind: fsm.RuleRoute, Match: &fsm.RuleMatch{Header: "x-fillcast-beta", Value: "1"}, Target: &fsm.RuleTarget{Site: "s2"}}
	anyBeta := &fsm.Rule{ID: "beta", Kind: fsm.RuleRoute, Match: &fsm.RuleMatch{Header: "X-Fillcast-Beta"}, Target: &fsm.RuleTarget{Appliances: []string{"b2"}}}
	lab := &fsm.Rule{ID: "lab", Kind: fsm.RuleRoute, Match: &fsm.RuleMatch{Prefix: "10.9.0.0/16"}, Target: &fsm.RuleTarget{Appliances: []string{"x1", "b1"}}}
	gone := &fsm.Rule{ID: "a-gone", Kind: fsm.RuleRoute, Match: &fsm.RuleMatch{Prefix: "0.0.0.0/0"}, Target: &fsm.RuleTarget{Appliances: []string{"b3", "nope"}}}
	goneSite := &fsm.Rule{ID: "a-gone", Kind: fsm.RuleRoute, Match: &fsm.RuleMatch{Prefix: "0.0.0.0/0"}, Target: &fsm.RuleTarget{Site: "s9"}}
	canaryDown := &fsm.Rule{ID: "c", Kind: fsm.RuleCanary, Title: "*", Percent: 100, Target: &fsm.RuleTarget{Appliances: []string{"b3"}}}
	canary := &fsm.Rule{ID: "c", Kind: fsm.RuleCanary, Title: "*", Percent: 100, Target: &fsm.RuleTarget{Appliances: []string{"b1"}}}
	lab10 := netip.MustParseAddr("10.9.3.4")
	dst := make([]steering.Target, 0, steering.MaxTargets)
	plain := describe(steer(fl, Compile(nil), SteerRequest{Title: "t1", Client: client}, dst))
	if !strings.HasPrefix(plain, "primary:a") || !strings.HasSuffix(plain, "parent:x1 origin") {
		t.Fatalf("steering without rules: %s", plain)
	}
	tests := []struct {
		name  string
		rules []*fsm.Rule
		req   SteerRequest
		want  string // a prefix of the answer; "plain" for steering's own
	}{
		{"header matches", []*fsm.Rule{beta}, SteerRequest{Title: "t1", Client: client, Header: header("X-Fillcast-Beta", "1")}, "primary:b"},
		{"header value differs", []*fsm.Rule{beta}, SteerRequest{Title: "t1", Client: client, Header: header("X-Fillcast-Beta", "0")}, "plain"},
		{"no headers", []*fsm.Rule{beta}, SteerRequest{Title: "t1", Client: client}, "plain"},
		{"any value", []*fsm.Rule{anyBeta}, SteerRequest{Title: "t1", Client: client, Header: header("X-Fillcast-Beta", "yes")}, "primary:b2 parent:a"},
		{"prefix matches", []*fsm.Rule{lab}, SteerRequest{Title: "t1", Client: lab10}, "primary:"},
		{"v4-mapped client", []*fsm.Rule{lab}, SteerRequest{Title: "t1", Client: netip.AddrFrom16(lab10.As16())}, "primary:"},
		{"prefix differs", []*fsm.Rule{lab}, SteerRequest{Title: "t1", Client: client}, "plain"},
		{"unhealthy group skipped", []*fsm.Rule{gone, anyBeta}, SteerRequest{Title: "t1", Client: client, Header: header("X-Fillcast-Beta", "1")}, "primary:b2"},
		{"unknown site skipped", []*fsm.Rule{goneSite}, SteerRequest{Title: "t1", Client: client}, "plain"},
		{"draining canary skipped", []*fsm.Rule{canaryDown}, SteerRequest{Title: "t1", Client: client, Session: "s"}, "plain"},
		{"canary after route", []*fsm.Rule{canary, anyBeta}, SteerRequest{Title: "t1", Client: client, Header: header("X-Fillcast-Beta", "1")}, "primary:b1 second:b2 parent:a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules := map[string]*fsm.Rule{}
			for _, r := range tc.rules {
				rules[r.ID] = r
			}
			got := steer(fl, Compile(rules), tc.req, dst)
			s := describe(got)
			if tc.want == "plain" && s != plain || tc.want != "plain" && !strings.HasPrefix(s, tc.want) {
				t.Errorf("answer %s, want %s", s, tc.want)
			}
			if len(got) > steering.MaxTargets || got[len(got)-1].Role != steering.RoleOrigin {
				t.Errorf("answer %s: want at most %d targets ending with the origin", s, steering.MaxTargets)
			}
			ids := map[string]bool{}
			for _, x := range got {
				if x.Appliance != "" && ids[x.Appliance] {
					t.Errorf("answer %s names %s twice", s, x.Appliance)
				}
				ids[x.Appliance] = true
			}
		})
	}
	if got := describe(steer(fl, Compile(map[string]*fsm.Rule{"lab": lab}), SteerRequest{Title: "t1", Client: lab10}, dst)); !strings.Contains(got, "x1") || !strings.Contains(got, "b1") {
		t.Errorf("lab answer %s, want x1 and b1 first", got)
	}
}

// TestSteerAllocs is not parallel: AllocsPerRun counts every goroutine's
// allocations.
func TestSteerAllocs(t *testing.T) {
	fl := testFleet(t)
	dst := make([]steering.Target, 0, steering.MaxTargets)
	hdr := header("X-Fillcast-Beta", "1")
	sets := map[string]*Set{
		"no steering rules": Compile(map[string]*fsm.Rule{
			"d": {ID: "d", Kind: fsm.RuleDrain, Site: "s1"},
			"s": {ID: "s", Kind: fsm.RuleStatic, Route: "GET /v1/search", Status: 503},
		}),
		"route and canary": Compile(map[string]*fsm.Rule{
			"beta": {ID: "beta", Kind: fsm.RuleRoute, Match: &fsm.RuleMatch{Header: "X-Fillcast-Beta"}, Target: &fsm.RuleTarget{Site: "s2"}},
			"c":    {ID: "c", Kind: fsm.RuleCanary, Title: "*", Percent: 50, Target: &fsm.RuleTarget{Appliances: []string{"x1"}}},
		}),
	}
	for name, set := range sets {
		req := SteerRequest{Title: "t1", Session: "sess", Client: client, Header: hdr}
		got := fl.Steer(dst[:0], steering.Request{Client: client, Title: "t1", DryRun: true})
		if n := testing.AllocsPerRun(200, func() { set.Steer(fl, req, got) }); n != 0 {
			t.Errorf("%s: Steer allocates %v times, want 0", name, n)
		}
		if n := testing.AllocsPerRun(200, func() { set.Static("GET /v1/search") }); n != 0 {
			t.Errorf("%s: Static allocates %v times, want 0", name, n)
		}
	}
}
