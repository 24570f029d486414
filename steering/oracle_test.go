package steering_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/steering/rendezvous"
	"github.com/fillcast/fillcast/steering/steeringtest"
)

// oracle ranks a site's appliances for title the slow, obvious way: the
// eligible ones, those under the load bound first, each group in
// descending weighted rendezvous score.
func oracle(f *steering.Fleet, as []steering.Appliance, site, title string, eps float64) []string {
	type cand struct {
		id    string
		under bool
		score float64
	}
	var cs []cand
	var total, weight float64
	for _, a := range as {
		if a.Site == site && f.Eligible(a.ID, title, t0) {
			total += a.Load
			weight += w(a)
		}
	}
	for _, a := range as {
		if a.Site == site && f.Eligible(a.ID, title, t0) {
			cs = append(cs, cand{a.ID, a.Load < (1+eps)*(total+1)/weight*w(a),
				rendezvous.Score(rendezvous.Key(title), rendezvous.Key(a.ID), w(a))})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].under != cs[j].under {
			return cs[i].under
		}
		return cs[i].score > cs[j].score
	})
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.id)
	}
	return ids
}

func w(a steering.Appliance) float64 {
	if a.Weight == 0 {
		return 1
	}
	return a.Weight
}

// TestAgainstOracle covers every path of the ranking: one weight class,
// several, more than the per-class shortcut handles, and sites larger
// than the per-decision cache.
func TestAgainstOracle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n       int
		weights []float64 // cycled over the appliances
	}{
		{5, []float64{1}},
		{12, []float64{1, 2}},
		{12, []float64{1, 2, 3, 4}},
		{12, []float64{1, 2, 3, 4, 5, 6}},
		{100, []float64{1}},
		{100, []float64{1, 3}},
		{150, []float64{0.5, 1, 1.5, 2, 2.5, 3, 7}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("n=%d weights=%v", tc.n, tc.weights), func(t *testing.T) {
			t.Parallel()
			r := randFor(uint64(tc.n))
			s := newSteerer(t, steering.Config{}, steeringtest.NewClock(t0))
			sites, as, client := steeringtest.Site(tc.n, t0)
			for i := range as {
				as[i].Weight = tc.weights[i%len(tc.weights)]
				as[i].Load = float64(r.IntN(50)) * as[i].Weight
				as[i].Draining = r.IntN(10) == 0
				if r.IntN(4) == 0 {
					as[i].Titles = steering.NewTitleSet([]string{steeringtest.Title(r.IntN(20))})
				}
			}
			f, err := s.Build(sites, as)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < 300; k++ {
				title := steeringtest.Title(k % 40)
				want := oracle(f, as, "isp-a", title, 0.25)
				got := f.Steer(nil, steering.Request{Client: client, Title: title, DryRun: true})
				var ids []string
				for _, x := range got {
					ids = append(ids, x.Appliance)
				}
				if len(want) > 2 {
					want = want[:2]
				}
				if fmt.Sprint(ids) != fmt.Sprint(want) {
					t.Fatalf("title %s: Steer = %v; want %v", title, ids, want)
				}
			}
		})
	}
}
