package placement_test

import (
	"fmt"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/placement"
	"github.com/fillcast/fillcast/controlplane/popularity"
)

// Example shows the fill planner's pipeline for one site: heartbeats and
// a new release into a popularity forecast, the forecast into a plan, and
// the plan into the changes each appliance must fill.
func Example() {
	now := time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)
	const gb = 1_000_000_000
	tracker, _ := popularity.New(popularity.Config{PriorRank: 1}, func() time.Time { return now })
	catalog := []placement.Title{{ID: "drama", Size: 4 * gb}, {ID: "comedy", Size: 2 * gb}, {ID: "docu", Size: 3 * gb}, {ID: "premiere", Size: 4 * gb}}
	for _, t := range catalog {
		ti := popularity.Title{ID: t.ID, Size: t.Size}
		if t.ID == "premiere" {
			ti.Release = now.Add(19 * time.Hour) // tomorrow evening
		}
		_ = tracker.AddTitle(ti)
	}
	// Heartbeats: bytes served per title.
	_ = tracker.Observe(popularity.Observation{Region: "eu-west", Title: "drama", Bytes: 400 * gb, At: now})
	_ = tracker.Observe(popularity.Observation{Region: "eu-west", Title: "comedy", Bytes: 60 * gb, At: now})
	_ = tracker.Observe(popularity.Observation{Region: "eu-west", Title: "docu", Bytes: 3 * gb, At: now})

	scores := map[string]float64{}
	for _, s := range tracker.Forecast("eu-west", now) {
		scores[s.Title] = s.Views
		fmt.Printf("%-8s %6.1f views boosted=%v\n", s.Title, s.Views, s.Boosted)
	}
	planner, _ := placement.New(placement.Config{})
	plan, _ := planner.Plan(placement.Input{
		Appliances: []placement.Appliance{
			{ID: "oca-flash", Profile: fillcast.ProfileFlash, Capacity: 9 * gb},
			{ID: "oca-storage", Profile: fillcast.ProfileStorage, Capacity: 20 * gb},
		},
		Catalog: catalog,
		Scores:  scores,
	}, nil)
	for _, c := range placement.Diff(nil, plan) {
		fmt.Printf("v%d %s: fill %v\n", plan.Version, c.Appliance, c.Add)
	}
	// Output:
	// drama     100.0 views boosted=false
	// premiere  100.0 views boosted=true
	// comedy     30.0 views boosted=false
	// docu        1.0 views boosted=false
	// v1 oca-flash: fill [drama premiere]
	// v1 oca-storage: fill [comedy docu drama premiere]
}
