package fleet

import (
	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/prometheus/client_golang/prometheus"
)

// States of an appliance in fillcast_fleet_appliances, as this node sees
// it.
const (
	// StateServing takes new players (steering sends them to it).
	StateServing = "serving"
	// StateDraining is heard from but drained, by its own heartbeat or a
	// drain rule.
	StateDraining = "draining"
	// StateStale was heard from, but not within steering's StaleAfter.
	StateStale = "stale"
	// StateSilent is registered but never heard from by this node.
	StateSilent = "silent"
	// StateExcluded is heard from, not draining, yet left out of
	// steering: unregistered, revoked, on a site not configured, its
	// heartbeat contradicting its registration, or a flash appliance
	// holding no planned title yet.
	StateExcluded = "excluded"
)

var states = []string{StateServing, StateDraining, StateStale, StateSilent, StateExcluded}

// addDrained marks in drained the appliances and sites a drain rule of s
// names (each rule names one or the other).
func addDrained(s *fsm.State, drained map[string]bool) {
	for _, r := range s.Rules {
		if r.Kind == fsm.RuleDrain {
			drained[r.Appliance+r.Site] = true
		}
	}
}

var (
	descAppliances = prometheus.NewDesc("fillcast_fleet_appliances",
		"Appliances by state as this node sees them: serving, draining, stale, silent (registered, never heard from) or excluded (heard from, left out of steering).",
		[]string{"state"}, nil)
	descBeatAge = prometheus.NewDesc("fillcast_fleet_heartbeat_age_seconds",
		"Time since this node last received (directly or passed on) a heartbeat of each appliance.",
		[]string{"appliance", "site"}, nil)
)

// Collector returns the fleet's metrics, read when scraped: appliances by
// state and each appliance's heartbeat age.
func (f *Fleet) Collector() prometheus.Collector { return collector{f} }

type collector struct{ f *Fleet }

// Describe sends the descriptions.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAppliances
	ch <- descBeatAge
}

// Collect classifies every appliance the registry or a heartbeat names.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	f := c.f
	now := f.d.Now()
	stale := f.d.Steerer.Config().StaleAfter
	drained := map[string]bool{}
	silent := map[string]bool{}
	f.d.Registry.Read(func(s *fsm.State) {
		for id := range s.Registrations {
			silent[id] = true
		}
		addDrained(s, drained)
	})
	current := f.Current()
	counts := make(map[string]int, len(states))
	for _, b := range f.Beats() {
		delete(silent, b.ID)
		age := now.Sub(b.Seen)
		ch <- prometheus.MustNewConstMetric(descBeatAge, prometheus.GaugeValue, max(age, 0).Seconds(), b.ID, b.Beat.Site)
		switch {
		case age >= stale:
			counts[StateStale]++
		case current.Serving(b.ID, now):
			counts[StateServing]++
		case b.Beat.Health == fillcast.HealthDraining || drained[b.ID] || drained[b.Beat.Site]:
			counts[StateDraining]++
		default:
			counts[StateExcluded]++
		}
	}
	counts[StateSilent] = len(silent)
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(descAppliances, prometheus.GaugeValue, float64(counts[s]), s)
	}
}
