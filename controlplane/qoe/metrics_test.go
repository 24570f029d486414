package qoe

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fillcast/fillcast/controlplane/events"
)

// gather registers tr in a pedantic registry, which checks the metrics
// against Describe, and returns every sample as "name{labels}" → value.
func gather(t *testing.T, tr *Tracker) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(tr); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	tr, _ := newTracker(t, Config{MetricKeys: 2})
	var batch []events.Event
	for i := range 3 { // t0: 1 play, t1: 2, t2: 3
		for range i + 1 {
			batch = append(batch, play(fmt.Sprint("t", i), "s1", t0))
		}
	}
	batch = append(batch,
		qoe("t2", "s1", "a1", 1000, 90, 10_000, 3000, t0),
		qoe("t2", "s1", "a1", 4000, 10, 0, 1000, t0),
		fatal("t2", "s1", "a1", t0),
	)
	tr.Apply(1, batch)
	got := gather(t, tr)

	want := map[string]float64{
		"fillcast_qoe_plays{dimension=title,key=t2}":                             3,
		"fillcast_qoe_plays{dimension=title,key=t1}":                             2,
		"fillcast_qoe_error_ratio{dimension=title,key=t2}":                       1.0 / 3,
		"fillcast_qoe_error_ratio{dimension=title,key=t1}":                       0,
		"fillcast_qoe_rebuffer_ratio{dimension=title,key=t2}":                    10_000.0 / 110_000,
		"fillcast_qoe_bitrate_kbps{dimension=title,key=t2}":                      2800,
		"fillcast_qoe_startup_seconds{dimension=title,key=t2,quantile=0.5}":      1,
		"fillcast_qoe_startup_seconds{dimension=title,key=t2,quantile=0.95}":     4,
		"fillcast_qoe_plays{dimension=site,key=s1}":                              6,
		"fillcast_qoe_error_ratio{dimension=site,key=s1}":                        1.0 / 6,
		"fillcast_qoe_rebuffer_ratio{dimension=site,key=s1}":                     10_000.0 / 110_000,
		"fillcast_qoe_bitrate_kbps{dimension=site,key=s1}":                       2800,
		"fillcast_qoe_startup_seconds{dimension=site,key=s1,quantile=0.5}":       1,
		"fillcast_qoe_startup_seconds{dimension=site,key=s1,quantile=0.95}":      4,
		"fillcast_qoe_plays{dimension=appliance,key=a1}":                         2,
		"fillcast_qoe_error_ratio{dimension=appliance,key=a1}":                   0.5,
		"fillcast_qoe_rebuffer_ratio{dimension=appliance,key=a1}":                10_000.0 / 110_000,
		"fillcast_qoe_bitrate_kbps{dimension=appliance,key=a1}":                  2800,
		"fillcast_qoe_startup_seconds{dimension=appliance,key=a1,quantile=0.5}":  1,
		"fillcast_qoe_startup_seconds{dimension=appliance,key=a1,quantile=0.95}": 4,
	}
	var gotNames, wantNames []string
	for k := range got {
		gotNames = append(gotNames, k)
	}
	for k := range want {
		wantNames = append(wantNames, k)
	}
	slices.Sort(gotNames)
	slices.Sort(wantNames)
	if !slices.Equal(gotNames, wantNames) {
		t.Fatalf("series:\n%s\nwant:\n%s", strings.Join(gotNames, "\n"), strings.Join(wantNames, "\n"))
	}
	for k, w := range want {
		tol := 1e-9
		if strings.HasPrefix(k, "fillcast_qoe_startup_seconds") {
			tol = StartupErrorBound + 0.001
		}
		if g := got[k]; !near(g, w, tol) || math.IsNaN(g) {
			t.Errorf("%s = %g, want %g", k, g, w)
		}
	}
}

// TestMetricsBounded: however many keys, the metrics carry MetricKeys
// per dimension.
func TestMetricsBounded(t *testing.T) {
	tr, _ := newTracker(t, Config{})
	var batch []events.Event
	for i := range 500 {
		batch = append(batch, play(fmt.Sprint("t", i), fmt.Sprint("s", i), t0))
	}
	tr.Apply(1, batch)
	got := gather(t, tr)
	n := 0
	for k := range got {
		if strings.HasPrefix(k, "fillcast_qoe_plays{") {
			n++
		}
	}
	if want := 2 * DefaultConfig().MetricKeys; n != want {
		t.Errorf("%d plays series, want %d (MetricKeys titles and sites)", n, want)
	}
}

// TestMetricsBadLabel: a key that is no valid label value is left out of
// the metrics, and the scrape still works.
func TestMetricsBadLabel(t *testing.T) {
	tr, _ := newTracker(t, Config{})
	tr.Apply(1, []events.Event{play("t1", "s\xff", t0)})
	got := gather(t, tr)
	if _, ok := got["fillcast_qoe_plays{dimension=title,key=t1}"]; !ok || len(got) != 2 {
		t.Errorf("series %v, want t1's plays and error ratio alone", got)
	}
	if r := tr.Report(DimSite, 0); len(r) != 1 {
		t.Errorf("sites %+v, want the bad key reported", r)
	}
}
