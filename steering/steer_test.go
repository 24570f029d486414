package steering_test

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/steeringtest"
)

func newSteerer(t testing.TB, cfg steering.Config, clock *steeringtest.Clock) *steering.Steerer {
	t.Helper()
	s, err := steering.New(cfg, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func build(t testing.TB, s *steering.Steerer, as []steering.Appliance) *steering.Fleet {
	t.Helper()
	f, err := s.Build(world(), as)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// describe renders an answer as "role:appliance@site ..." for comparison.
func describe(ts []steering.Target) string {
	var b strings.Builder
	for i, x := range ts {
		if i > 0 {
			b.WriteByte(' ')
		}
		if x.Role == steering.RoleOrigin {
			b.WriteString("origin")
			continue
		}
		fmt.Fprintf(&b, "%s:%s@%s", x.Role, x.Appliance, x.Site)
	}
	return b.String()
}

func TestSteerTiers(t *testing.T) {
	t.Parallel()
	clock := steeringtest.NewClock(t0)
	s := newSteerer(t, steering.Config{Origin: "http://origin.example:9000"}, clock)
	all := []steering.Appliance{
		oca("a1", "isp1-ams"), oca("a2", "isp1-ams"),
		oca("b1", "isp2-ams"), oca("b2", "isp2-ams"),
		oca("x1", "ix-ams"),
	}
	ispDown := append([]steering.Appliance(nil), all...)
	ispDown[0].Draining, ispDown[1].Draining = true, true
	oneInSite := append([]steering.Appliance(nil), all[1:]...)

	tests := []struct {
		name   string
		as     []steering.Appliance
		client string
		want   string // with appliance names replaced by their site's letter
	}{
		{"v4 isp1", all, "203.0.113.7", "primary:a@isp1-ams second:a@isp1-ams parent:x@ix-ams origin"},
		{"longest match wins", all, "203.0.113.200", "primary:b@isp2-ams second:b@isp2-ams parent:x@ix-ams origin"},
		{"v6 client", all, "2001:db8:1::5", "primary:a@isp1-ams second:a@isp1-ams parent:x@ix-ams origin"},
		{"v4-mapped v6 client", all, "::ffff:198.51.100.1", "primary:b@isp2-ams second:b@isp2-ams parent:x@ix-ams origin"},
		{"no match", all, "192.0.2.1", "origin"},
		{"invalid address", all, "", "origin"},
		{"isp all draining", ispDown, "203.0.113.7", "primary:x@ix-ams origin"},
		{"one left in site", oneInSite, "203.0.113.7", "primary:a@isp1-ams parent:x@ix-ams origin"},
		{"empty fleet", nil, "203.0.113.7", "origin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := build(t, s, tc.as)
			var client netip.Addr
			if tc.client != "" {
				client = netip.MustParseAddr(tc.client)
			}
			got := f.Steer(nil, steering.Request{Client: client, Title: "t1"})
			// Which appliance of a site comes first is the hash's business;
			// this test checks tiers and roles.
			d := describe(got)
			for _, id := range []string{"a1", "a2", "b1", "b2", "x1"} {
				d = strings.ReplaceAll(d, id+"@", id[:1]+"@")
			}
			if d != tc.want {
				t.Errorf("Steer(%s) = %s; want %s", tc.client, d, tc.want)
			}
			if len(got) > 1 && got[0].Appliance == got[1].Appliance {
				t.Errorf("Steer(%s) = %s: primary and second are the same appliance", tc.client, describe(got))
			}
			if last := got[len(got)-1]; last.Role != steering.RoleOrigin || last.URL != "http://origin.example:9000" {
				t.Errorf("last target = %+v; want the origin", last)
			}
		})
	}
}

func TestSteerSkipsIneligible(t *testing.T) {
	t.Parallel()
	const site = "isp1-ams"
	tests := []struct {
		name    string
		edit    func(a *steering.Appliance)
		advance time.Duration
		title   string
	}{
		{"draining", func(a *steering.Appliance) { a.Draining = true }, 0, ""},
		{"never seen", func(a *steering.Appliance) { a.LastSeen = time.Time{} }, 0, ""},
		{"silent too long", func(a *steering.Appliance) { a.LastSeen = t0.Add(-10 * time.Second) }, 0, ""},
		{"all silent", func(a *steering.Appliance) {}, 7 * time.Second, ""},
		{"does not hold the title", func(a *steering.Appliance) { a.Titles = steering.NewTitleSet([]string{"other"}) }, 0, ""},
		{"holds only the title", func(a *steering.Appliance) { a.Titles = steering.NewTitleSet([]string{"hot"}) }, 0, "hot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := steeringtest.NewClock(t0)
			s := newSteerer(t, steering.Config{}, clock)
			var as []steering.Appliance
			for i := 0; i < 5; i++ {
				as = append(as, oca(fmt.Sprintf("a%d", i), site))
			}
			tc.edit(&as[2])
			f := build(t, s, as)
			clock.Advance(tc.advance)
			seen := map[string]int{}
			for k := 0; k < 500; k++ {
				title := tc.title
				if title == "" {
					title = steeringtest.Title(k)
				}
				for _, x := range f.Steer(nil, steering.Request{Client: netip.MustParseAddr("203.0.113.1"), Title: title, DryRun: true}) {
					seen[x.Appliance]++
				}
			}
			switch {
			case tc.advance > 0 && len(seen) != 0:
				t.Errorf("after %v of silence got %v; want nobody", tc.advance, seen)
			case tc.title != "" && seen["a2"] == 0:
				t.Errorf("a2 holds %q yet never chosen: %v", tc.title, seen)
			case tc.title == "" && tc.advance == 0 && seen["a2"] != 0:
				t.Errorf("a2 chosen %d times; want never (%v)", seen["a2"], seen)
			}
			probe := tc.title
			if probe == "" {
				probe = "t000001"
			}
			if got := f.Eligible("a2", probe, clock.Now()); got != (tc.title != "") {
				t.Errorf("Eligible(a2) = %v; want %v", got, tc.title != "")
			}
		})
	}
}

func TestSteerDeterministic(t *testing.T) {
	t.Parallel()
	spec := steeringtest.LibrarySpec()
	spec.ISPSites, spec.IXSites, spec.Titles = 8, 2, 2000
	fl := steeringtest.Generate(spec, t0)
	reqs := steeringtest.Requests(randFor(1), fl, spec.Titles, 0.9, 3000)
	answers := func(reverse bool) []string {
		s := newSteerer(t, steering.Config{Origin: "http://o:1"}, steeringtest.NewClock(t0))
		as := append([]steering.Appliance(nil), fl.Appliances...)
		if reverse { // input order must not matter
			for i, j := 0, len(as)-1; i < j; i, j = i+1, j-1 {
				as[i], as[j] = as[j], as[i]
			}
		}
		f, err := s.Build(fl.Sites, as)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range reqs {
			out = append(out, describe(f.Steer(nil, r)))
		}
		return out
	}
	a, b := answers(false), answers(true)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("request %d: %s on one node, %s on another", i, a[i], b[i])
		}
	}
}

// TestSteerAllocs is not parallel: AllocsPerRun counts the
// whole process's allocations.
func TestSteerAllocs(t *testing.T) {
	spec := steeringtest.LibrarySpec()
	spec.ISPSites, spec.IXSites, spec.Titles = 4, 2, 1000
	fl := steeringtest.Generate(spec, t0)
	s := newSteerer(t, steering.Config{Origin: "http://o:1"}, steeringtest.NewClock(t0))
	f, err := s.Build(fl.Sites, fl.Appliances)
	if err != nil {
		t.Fatal(err)
	}
	reqs := steeringtest.Requests(randFor(2), fl, spec.Titles, 0.9, 256)
	dst := make([]steering.Target, 0, steering.MaxTargets)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		dst = f.Steer(dst[:0], reqs[i%len(reqs)])
		i++
	})
	if allocs != 0 {
		t.Errorf("Steer allocates %v times per call; want 0", allocs)
	}
}

func TestRecentDecays(t *testing.T) {
	t.Parallel()
	clock := steeringtest.NewClock(t0)
	s := newSteerer(t, steering.Config{RecentHalfLife: 4 * time.Second, StaleAfter: time.Hour}, clock)
	f := build(t, s, []steering.Appliance{oca("a1", "isp1-ams")})
	for i := 0; i < 64; i++ {
		f.Steer(nil, steering.Request{Client: netip.MustParseAddr("203.0.113.1"), Title: "t1"})
	}
	f.Steer(nil, steering.Request{Client: netip.MustParseAddr("203.0.113.1"), Title: "t1", DryRun: true})
	tests := []struct {
		after time.Duration
		want  float64
	}{{0, 64}, {4 * time.Second, 32}, {8 * time.Second, 16}, {40 * time.Second, 64.0 / 1024}, {10 * time.Minute, 0}}
	for _, tc := range tests {
		clock.Set(t0.Add(tc.after))
		got := s.Recent("a1")
		if d := got - tc.want; d > tc.want*0.02+1e-9 || -d > tc.want*0.02+1e-9 {
			t.Errorf("recent after %v = %v; want %v", tc.after, got, tc.want)
		}
	}
	if got := s.Recent("nobody"); got != 0 {
		t.Errorf("Recent(unknown) = %v; want 0", got)
	}
}

func TestConcurrentSteerAndSwap(t *testing.T) {
	t.Parallel()
	clock := steeringtest.NewClock(t0)
	s := newSteerer(t, steering.Config{}, clock)
	var cur atomic.Pointer[steering.Fleet]
	as := []steering.Appliance{oca("a1", "isp1-ams"), oca("a2", "isp1-ams"), oca("x1", "ix-ams")}
	cur.Store(build(t, s, as))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			dst := make([]steering.Target, 0, steering.MaxTargets)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				dst = cur.Load().Steer(dst[:0], steering.Request{Client: netip.MustParseAddr("203.0.113.9"), Title: steeringtest.Title(i % 50)})
				if len(dst) == 0 {
					t.Errorf("goroutine %d: empty answer", g)
					return
				}
			}
		}(g)
	}
	for i := 0; i < 200; i++ {
		as[i%2].Load = float64(i)
		f, err := s.Update(cur.Load(), as)
		if err != nil {
			t.Fatal(err)
		}
		cur.Store(f)
	}
	close(stop)
	wg.Wait()
}
