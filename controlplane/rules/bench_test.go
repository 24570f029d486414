package rules

import (
	"testing"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/steering"
)

// BenchmarkSteer measures what the rules add to a steering decision:
// nothing without canary or route rules, a header check, a prefix check
// and a canary hash with them.
func BenchmarkSteer(b *testing.B) {
	fl := testFleet(b)
	hdr := header("X-Other", "1")
	sets := []struct {
		name string
		set  *Set
	}{
		{"none", Compile(map[string]*fsm.Rule{"d": {ID: "d", Kind: fsm.RuleDrain, Site: "s1"}})},
		{"route and canary", Compile(map[string]*fsm.Rule{
			"beta": {ID: "beta", Kind: fsm.RuleRoute, Match: &fsm.RuleMatch{Header: "X-Fillcast-Beta"}, Target: &fsm.RuleTarget{Site: "s2"}},
			"lab":  {ID: "lab", Kind: fsm.RuleRoute, Match: &fsm.RuleMatch{Prefix: "10.9.0.0/16"}, Target: &fsm.RuleTarget{Site: "s2"}},
			"c":    {ID: "c", Kind: fsm.RuleCanary, Title: "*", Percent: 5, Target: &fsm.RuleTarget{Appliances: []string{"b1"}}},
		})},
	}
	for _, s := range sets {
		b.Run(s.name, func(b *testing.B) {
			dst := make([]steering.Target, 0, steering.MaxTargets)
			got := fl.Steer(dst, steering.Request{Client: client, Title: "t1", DryRun: true})
			req := SteerRequest{Title: "t1", Session: "0123456789abcdef", Client: client, Header: hdr, DryRun: true}
			b.ReportAllocs()
			for b.Loop() {
				s.set.Steer(fl, req, got)
			}
		})
	}
}

// BenchmarkStatic measures the static-rule lookup of every request.
func BenchmarkStatic(b *testing.B) {
	set := Compile(map[string]*fsm.Rule{"s": {ID: "s", Kind: fsm.RuleStatic, Route: "GET /v1/search", Status: 503}})
	b.ReportAllocs()
	for b.Loop() {
		set.Static("GET /v1/playback")
	}
}
