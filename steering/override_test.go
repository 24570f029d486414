package steering_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/steeringtest"
)

func TestOverrideTargets(t *testing.T) {
	t.Parallel()
	clock := steeringtest.NewClock(t0)
	s := newSteerer(t, steering.Config{}, clock)
	drained := oca("a3", "isp1-ams")
	drained.Draining = true
	stale := oca("b2", "isp2-ams")
	stale.LastSeen = t0.Add(-time.Hour)
	noTitles := oca("x2", "ix-ams")
	noTitles.Titles = steering.NewTitleSet(nil)
	f := build(t, s, []steering.Appliance{
		oca("a1", "isp1-ams"), oca("a2", "isp1-ams"), drained,
		oca("b1", "isp2-ams"), stale, oca("x1", "ix-ams"), noTitles,
	})
	t.Run("ApplianceTarget", func(t *testing.T) {
		for _, tc := range []struct {
			id string
			ok bool
		}{{"a1", true}, {"a3", false}, {"b2", false}, {"nope", false}, {"x2", true}} {
			got, ok := f.ApplianceTarget(tc.id)
			if ok != tc.ok || (ok && (got.Appliance != tc.id || got.Role != steering.RolePrimary || got.URL == "")) {
				t.Errorf("ApplianceTarget(%s) = %+v, %v; want ok %v", tc.id, got, ok, tc.ok)
			}
		}
	})
	t.Run("SiteTarget", func(t *testing.T) {
		seen := map[string]int{}
		for k := range uint64(200) {
			got, ok := f.SiteTarget("isp1-ams", k)
			if !ok {
				t.Fatal("no target in isp1-ams")
			}
			again, _ := f.SiteTarget("isp1-ams", k)
			if again != got {
				t.Fatalf("key %d: %s then %s", k, got.Appliance, again.Appliance)
			}
			seen[got.Appliance]++
		}
		if len(seen) != 2 || seen["a3"] != 0 {
			t.Errorf("isp1-ams keys went to %v, want a1 and a2 (a3 drains)", seen)
		}
		if _, ok := f.SiteTarget("isp2-nowhere", 1); ok {
			t.Error("target in an unknown site")
		}
		if got, ok := f.GroupTarget([]string{"nope", "a3", "b2", "b1"}, 7); !ok || got.Appliance != "b1" {
			t.Errorf("GroupTarget = %+v, %v; want b1, the only serving one", got, ok)
		}
	})
	t.Run("SteerSite and SteerGroup", func(t *testing.T) {
		req := steering.Request{Title: "t1", DryRun: true}
		if got, want := describe(f.SteerSite(nil, req, "isp1-ams")), "primary:a"; len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("SteerSite(isp1-ams) = %s", got)
		}
		if got := f.SteerSite(nil, req, "isp2-ams"); len(got) != 1 || got[0].Appliance != "b1" {
			t.Errorf("SteerSite(isp2-ams) = %s, want b1 alone", describe(got))
		}
		if got := f.SteerSite(nil, req, "nowhere"); len(got) != 0 {
			t.Errorf("SteerSite(nowhere) = %s", describe(got))
		}
		got := f.SteerGroup(nil, req, []string{"b1", "x1", "x2", "a3"})
		if len(got) != 2 || got[0].Role != steering.RolePrimary || got[1].Role != steering.RoleSecond || holds(got, "x2") || holds(got, "a3") {
			t.Errorf("SteerGroup = %s, want b1 and x1 (x2 holds nothing, a3 drains)", describe(got))
		}
		if got := f.SteerGroup(nil, req, []string{"b1", "b1"}); len(got) != 1 {
			t.Errorf("SteerGroup of one id twice = %s", describe(got))
		}
	})
	t.Run("counts unless dry run", func(t *testing.T) {
		before := s.Recent("b1")
		f.SteerSite(nil, steering.Request{Title: "t1"}, "isp2-ams")
		if s.Recent("b1") <= before {
			t.Errorf("recent b1 %v after SteerSite, was %v", s.Recent("b1"), before)
		}
	})
}

func holds(ts []steering.Target, id string) bool {
	for _, x := range ts {
		if x.Appliance == id {
			return true
		}
	}
	return false
}

func TestMerge(t *testing.T) {
	t.Parallel()
	tg := func(r steering.Role, id, site string) steering.Target {
		if r == steering.RoleOrigin {
			return steering.Target{Role: r, URL: "http://origin"}
		}
		return steering.Target{Role: r, Appliance: id, Site: site, URL: "http://" + id}
	}
	answer := []steering.Target{
		tg(steering.RolePrimary, "a1", "isp1-ams"), tg(steering.RoleSecond, "a2", "isp1-ams"),
		tg(steering.RoleParent, "x1", "ix-ams"), tg(steering.RoleOrigin, "", ""),
	}
	tests := []struct {
		name string
		lead []steering.Target
		rest []steering.Target
		want string
	}{
		{"nothing to lead", nil, answer, "primary:a1@isp1-ams second:a2@isp1-ams parent:x1@ix-ams origin"},
		{"one leads", []steering.Target{tg(steering.RolePrimary, "b1", "isp2-ams")}, answer,
			"primary:b1@isp2-ams parent:a1@isp1-ams parent:a2@isp1-ams origin"},
		{"two lead", []steering.Target{tg(steering.RolePrimary, "b1", "isp2-ams"), tg(steering.RoleSecond, "b2", "isp2-ams")}, answer,
			"primary:b1@isp2-ams second:b2@isp2-ams parent:a1@isp1-ams origin"},
		{"no duplicates", []steering.Target{tg(steering.RolePrimary, "a2", "isp1-ams")}, answer,
			"primary:a2@isp1-ams second:a1@isp1-ams parent:x1@ix-ams origin"},
		{"no origin", []steering.Target{tg(steering.RolePrimary, "b1", "isp2-ams")}, answer[:3],
			"primary:b1@isp2-ams parent:a1@isp1-ams parent:a2@isp1-ams parent:x1@ix-ams"},
		{"origin alone before", []steering.Target{tg(steering.RolePrimary, "b1", "isp2-ams")}, answer[3:], "primary:b1@isp2-ams origin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := describe(steering.Merge(make([]steering.Target, 0, steering.MaxTargets), tc.lead, tc.rest))
			if got != tc.want {
				t.Errorf("Merge = %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestOverrideAllocs is not parallel: AllocsPerRun counts the
// allocations of every goroutine.
func TestOverrideAllocs(t *testing.T) {
	clock := steeringtest.NewClock(t0)
	s := newSteerer(t, steering.Config{}, clock)
	f := build(t, s, []steering.Appliance{oca("a1", "isp1-ams"), oca("a2", "isp1-ams"), oca("b1", "isp2-ams")})
	dst := make([]steering.Target, 0, steering.MaxTargets)
	group := []string{"a1", "b1"}
	req := steering.Request{Title: "t1"}
	answer := f.Steer(nil, steering.Request{Title: "t1", Client: netip.MustParseAddr("203.0.113.7")})
	lead := f.SteerSite(nil, req, "isp2-ams")
	n := testing.AllocsPerRun(100, func() {
		dst = f.SteerSite(dst[:0], req, "isp1-ams")
		dst = f.SteerGroup(dst[:0], req, group)
		_, _ = f.ApplianceTarget("a1")
		_, _ = f.SiteTarget("isp1-ams", 42)
		_, _ = f.GroupTarget(group, 42)
		dst = steering.Merge(dst[:0], lead, answer)
	})
	if n != 0 {
		t.Errorf("overrides allocate %v times per call, want 0", n)
	}
}
