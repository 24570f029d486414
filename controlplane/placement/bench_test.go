package placement

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fillcast/fillcast"
)

// bigSite is the scale: 20,000 titles and 50 appliances (10
// storage holding the catalog twice over, 40 flash holding 20 % of it).
func bigSite() Input {
	r := rand.New(rand.NewPCG(1, 2))
	in := randomInput(r, spec{storage: 10, flash: 40, titles: 20_000, storageRoom: 2, flashRoom: 0.2})
	return in
}

// drift multiplies every score by a random factor in [1-d, 1+d].
func drift(r *rand.Rand, scores map[string]float64, d float64) map[string]float64 {
	out := make(map[string]float64, len(scores))
	for id, s := range scores {
		out[id] = s * (1 - d + 2*d*r.Float64())
	}
	return out
}

func BenchmarkPlan(b *testing.B) {
	in := bigSite()
	p := newPlanner(b, Config{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Plan(in, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplan is the scheduled case: yesterday's plan and a forecast
// that drifted by up to 20 %. It reports the share of planned bytes that
// moved.
func BenchmarkReplan(b *testing.B) {
	in := bigSite()
	p := newPlanner(b, Config{})
	prev := mustPlan(b, p, in, nil)
	next := in
	next.Scores = drift(rand.New(rand.NewPCG(3, 4)), in.Scores, 0.2)
	b.ReportAllocs()
	var plan *Plan
	for b.Loop() {
		plan = mustPlan(b, p, next, prev)
	}
	_, moved := churn(prev, plan, in)
	b.ReportMetric(float64(moved)/float64(plannedBytes(prev, in)), "moved/planned")
}

// TestBigSiteChurn checks the scale for churn (the time is
// BenchmarkPlan's business): a day's drift of ±20 % in every score moves a
// few percent of the planned bytes, not a reshuffle.
func TestBigSiteChurn(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("big site")
	}
	in := bigSite()
	p := newPlanner(t, Config{})
	prev := mustPlan(t, p, in, nil)
	next := in
	next.Scores = drift(rand.New(rand.NewPCG(3, 4)), in.Scores, 0.2)
	plan := mustPlan(t, p, next, prev)
	_, moved := churn(prev, plan, in)
	frac := float64(moved) / float64(plannedBytes(prev, in))
	t.Logf("±20 %% drift moved %.2f %% of %d planned bytes over %d appliances", 100*frac, plannedBytes(prev, in), len(in.Appliances))
	if frac > 0.05 || math.IsNaN(frac) {
		t.Errorf("moved %.2f %% of the planned bytes, want under 5 %%", 100*frac)
	}
	for _, a := range in.Appliances {
		if a.Profile == fillcast.ProfileFlash && len(plan.Holds[a.ID]) == 0 {
			t.Errorf("%s holds nothing", a.ID)
		}
	}
}
