package steering_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/steeringtest"
)

func randFor(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 42)) }

// site builds a steerer and a one-site fleet of n appliances with the
// given weights (nil: all 1) on a clock that stands still, so recent
// counts never decay during a test.
func site(t testing.TB, eps float64, n int, weights []float64) (*steering.Steerer, *steering.Fleet, netip.Addr, []steering.Appliance) {
	t.Helper()
	clock := steeringtest.NewClock(t0)
	s := newSteerer(t, steering.Config{Epsilon: eps}, clock)
	sites, as, client := steeringtest.Site(n, t0)
	for i := range as {
		if weights != nil {
			as[i].Weight = weights[i]
		}
	}
	f, err := s.Build(sites, as)
	if err != nil {
		t.Fatal(err)
	}
	return s, f, client, as
}

func TestBalanceWithinBound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n        int
		eps      float64
		requests int
		zipf     float64
		titles   int
	}{
		{20, 0.25, 5000, 0.9, 100000},
		{20, 0.1, 5000, 0.9, 100000},
		{20, 0.25, 5000, 1.2, 1000},
		{7, 0.5, 3000, 0.9, 50},
		{3, 0.25, 1000, 2.0, 10}, // one title is nearly all the traffic
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("n=%d eps=%v zipf=%v titles=%d", tc.n, tc.eps, tc.zipf, tc.titles), func(t *testing.T) {
			t.Parallel()
			_, f, client, _ := site(t, tc.eps, tc.n, nil)
			z := steeringtest.NewZipf(randFor(3), tc.zipf, tc.titles)
			count := map[string]int{}
			dst := make([]steering.Target, 0, steering.MaxTargets)
			for i := 0; i < tc.requests; i++ {
				dst = f.Steer(dst[:0], steering.Request{Client: client, Title: steeringtest.Title(z.Next())})
				p := dst[0].Appliance
				// The bound holds at every step, not just at the end.
				if limit := (1+tc.eps)*float64(i+1)/float64(tc.n) + 1; float64(count[p]+1) > limit {
					t.Fatalf("request %d: %s gets player %d; bound is %.2f", i, p, count[p]+1, limit)
				}
				count[p]++
			}
			busiest := 0
			for _, c := range count {
				busiest = max(busiest, c)
			}
			mean := float64(tc.requests) / float64(tc.n)
			if got, want := float64(busiest)/mean, 1+tc.eps+1/mean; got > want {
				t.Errorf("busiest/mean = %.3f; want <= %.3f", got, want)
			}
		})
	}
}

func TestMinimalMovement(t *testing.T) {
	t.Parallel()
	const titles = 20000
	s, f, client, as := site(t, 0.25, 20, nil)
	primaries := func(f *steering.Fleet) []string {
		out := make([]string, titles)
		dst := make([]steering.Target, 0, steering.MaxTargets)
		for k := range out {
			dst = f.Steer(dst[:0], steering.Request{Client: client, Title: steeringtest.Title(k), DryRun: true})
			out[k] = dst[0].Appliance
		}
		return out
	}
	before := primaries(f)
	tests := []struct {
		name     string
		as       []steering.Appliance
		mayMove  func(from, to string) bool
		maxMoved float64
	}{
		{"one of 20 leaves", append(append([]steering.Appliance(nil), as[:7]...), as[8:]...),
			func(from, to string) bool { return from == as[7].ID }, 0.10},
		{"one joins", append(append([]steering.Appliance(nil), as...), steering.Appliance{ID: "oca-new", Site: "isp-a", URL: "http://10.0.1.1:8080", LastSeen: t0}),
			func(from, to string) bool { return to == "oca-new" }, 0.10},
		{"one drains", func() []steering.Appliance {
			c := append([]steering.Appliance(nil), as...)
			c[3].Draining = true
			return c
		}(), func(from, to string) bool { return from == as[3].ID }, 0.10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := s.Update(f, tc.as)
			if err != nil {
				t.Fatal(err)
			}
			after := primaries(g)
			moved := 0
			for k := range before {
				if before[k] == after[k] {
					continue
				}
				moved++
				if !tc.mayMove(before[k], after[k]) {
					t.Fatalf("title %d moved from %s to %s", k, before[k], after[k])
				}
			}
			if frac := float64(moved) / titles; frac > tc.maxMoved || moved == 0 {
				t.Errorf("moved %.3f of titles; want (0, %.2f]", frac, tc.maxMoved)
			}
		})
	}
}

func TestCapacityWeighting(t *testing.T) {
	t.Parallel()
	weights := []float64{1, 2, 3, 4}
	const total = 10.0

	t.Run("preference at no load", func(t *testing.T) {
		t.Parallel()
		_, f, client, as := site(t, 0.25, len(weights), weights)
		const titles = 40000
		count := map[string]int{}
		for k := 0; k < titles; k++ {
			count[f.Steer(nil, steering.Request{Client: client, Title: steeringtest.Title(k), DryRun: true})[0].Appliance]++
		}
		for i, a := range as {
			want := titles * weights[i] / total
			if got := float64(count[a.ID]); got < want*0.95 || got > want*1.05 {
				t.Errorf("%s (weight %v) is first for %v titles; want about %.0f", a.ID, weights[i], got, want)
			}
		}
	})

	t.Run("bound under load", func(t *testing.T) {
		t.Parallel()
		const eps = 0.25
		_, f, client, as := site(t, eps, len(weights), weights)
		z := steeringtest.NewZipf(randFor(4), 0.9, 100)
		count := map[string]int{}
		const requests = 4000
		for i := 0; i < requests; i++ {
			count[f.Steer(nil, steering.Request{Client: client, Title: steeringtest.Title(z.Next())})[0].Appliance]++
		}
		for i, a := range as {
			limit := (1+eps)*requests*weights[i]/total + 1
			if got := float64(count[a.ID]); got > limit {
				t.Errorf("%s (weight %v) has %v players; bound is %.1f", a.ID, weights[i], got, limit)
			}
		}
		if count[as[3].ID] <= count[as[0].ID] {
			t.Errorf("weight 4 has %d players, weight 1 has %d; want the heavier to take more", count[as[3].ID], count[as[0].ID])
		}
	})
}

func TestReportedLoadCounts(t *testing.T) {
	t.Parallel()
	clock := steeringtest.NewClock(t0)
	s := newSteerer(t, steering.Config{}, clock)
	sites, as, client := steeringtest.Site(5, t0)
	as[2].Load = 1000 // far above its share: it must take nobody new
	f, err := s.Build(sites, as)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 300; k++ {
		got := f.Steer(nil, steering.Request{Client: client, Title: steeringtest.Title(k)})
		if got[0].Appliance == as[2].ID {
			t.Fatalf("title %d went to %s, which reports %v players", k, as[2].ID, as[2].Load)
		}
	}
}

func TestHotTitleSpills(t *testing.T) {
	t.Parallel()
	const n, eps, requests = 10, 0.25, 1000
	_, f, client, _ := site(t, eps, n, nil)
	count := map[string]int{}
	for i := 0; i < requests; i++ {
		count[f.Steer(nil, steering.Request{Client: client, Title: "blockbuster"})[0].Appliance]++
	}
	// Each appliance stops at (1+eps) times the mean, so the title needs
	// at least n/(1+eps) of them.
	if need := int(math.Ceil(n / (1 + eps))); len(count) < need {
		t.Errorf("a hot title reached %d of %d appliances; want at least %d: %v", len(count), n, need, count)
	}
	for id, c := range count {
		if limit := (1+eps)*requests/n + 1; float64(c) > limit {
			t.Errorf("%s has %d players of a hot title; bound %.0f", id, c, limit)
		}
	}
}
