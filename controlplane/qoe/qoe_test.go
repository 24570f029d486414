package qoe

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/internal/clocktest"
)

// The projection interface the stream consumer feeds.
var _ interface {
	Apply(seq uint64, batch []events.Event)
	Applied() uint64
} = (*Tracker)(nil)

// t0 is in the middle of a minute.
var t0 = time.Date(2026, 11, 26, 12, 0, 30, 0, time.UTC)

func newTracker(t testing.TB, cfg Config) (*Tracker, *clocktest.Clock) {
	t.Helper()
	c := clocktest.New(t0)
	tr, err := New(cfg, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return tr, c
}

func play(title, site string, at time.Time) events.Event {
	return events.Event{ID: "p", Type: events.TypePlay, Title: title, Site: site, TS: at}
}

func qoe(title, site, appliance string, startupMS, playedS, rebufferMS, kbps float64, at time.Time) events.Event {
	return events.Event{ID: "q", Type: events.TypeQoE, Title: title, Site: site, Appliance: appliance, TS: at,
		StartupMS: startupMS, PlayedS: playedS, RebufferMS: rebufferMS, BitrateKbps: kbps}
}

func fatal(title, site, appliance string, at time.Time) events.Event {
	return events.Event{ID: "e", Type: events.TypeError, Title: title, Site: site, Appliance: appliance, Code: "E", Fatal: true, TS: at}
}

func usage(appliance string, at time.Time, rows ...fillcast.UsageRow) *fillcast.Usage {
	return &fillcast.Usage{Appliance: appliance, Site: "s1", ID: fmt.Sprint(appliance, "-", at.UnixNano()), Start: at, End: at.Add(10 * time.Second), Titles: rows}
}

func cmcdRow(title, rendition string, requests, brRequests, brSum, starved int64) fillcast.UsageRow {
	return fillcast.UsageRow{Title: title, Rendition: rendition, Requests: requests, Status2xx: requests,
		CMCD: fillcast.UsageCMCD{Requests: requests, BitrateRequests: brRequests, BitrateKbpsSum: brSum, Starved: starved}}
}

// near reports whether got is want within a relative tolerance.
func near(got, want, tol float64) bool {
	if want == 0 {
		return math.Abs(got) <= tol
	}
	return math.Abs(got-want) <= tol*math.Abs(want)
}

// checkRow compares a row with want: startup quantiles within the
// histogram's error bound, the other figures within rounding.
func checkRow(t *testing.T, got, want Row) {
	t.Helper()
	if got.Key != want.Key || got.Plays != want.Plays || got.Startups != want.Startups ||
		got.FatalErrors != want.FatalErrors || got.CMCDRequests != want.CMCDRequests {
		t.Errorf("%s: counts %+v, want %+v", want.Key, got, want)
	}
	for _, f := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"startup_p50_ms", got.StartupP50MS, want.StartupP50MS, StartupErrorBound + 0.001},
		{"startup_p95_ms", got.StartupP95MS, want.StartupP95MS, StartupErrorBound + 0.001},
		{"rebuffer_ratio", got.RebufferRatio, want.RebufferRatio, 1e-9},
		{"bitrate_kbps", got.BitrateKbps, want.BitrateKbps, 1e-9},
		{"error_rate", got.ErrorRate, want.ErrorRate, 1e-9},
		{"cmcd_bitrate_kbps", got.CMCDBitrateKbps, want.CMCDBitrateKbps, 1e-9},
		{"starvation_ratio", got.StarvationRatio, want.StarvationRatio, 1e-9},
		{"played_s", got.PlayedS, want.PlayedS, 1e-9},
	} {
		if !near(f.got, f.want, f.tol) {
			t.Errorf("%s: %s = %g, want %g", want.Key, f.name, f.got, f.want)
		}
	}
}

func checkRows(t *testing.T, got, want []Row) {
	t.Helper()
	var gk, wk []string
	for _, r := range got {
		gk = append(gk, r.Key)
	}
	for _, r := range want {
		wk = append(wk, r.Key)
	}
	if !slices.Equal(gk, wk) {
		t.Fatalf("keys %v, want %v", gk, wk)
	}
	for i := range got {
		checkRow(t, got[i], want[i])
	}
}

func TestFigures(t *testing.T) {
	tr, _ := newTracker(t, Config{})
	at := t0.Add(-5 * time.Minute)
	tr.Apply(1, []events.Event{
		play("t1", "s1", at), play("t1", "s1", at), play("t1", "s1", at), play("t1", "s2", at),
		qoe("t1", "s1", "a1", 800, 100, 0, 2000, at),
		qoe("t1", "s1", "a1", 1000, 50, 1000, 4000, at),
		qoe("t1", "s2", "a2", 2000, 50, 0, 3000, at),
		qoe("t1", "s1", "a1", 0, 100, 1000, 2000, at), // not a playback's first
		fatal("t1", "s1", "a1", at),
		{ID: "n", Type: events.TypeError, Title: "t1", Site: "s1", Appliance: "a1", Code: "W"}, // not fatal
		fatal("", "s3", "", at),                                                                // no title: the site alone
		{ID: "v", Type: events.TypeProgress, Title: "t9", Site: "s9", PositionS: 1, DurationS: 2},
	})
	tr.ApplyUsage(2, usage("a1", at,
		cmcdRow("t1", "720p", 100, 80, 80*3000, 2),
		cmcdRow("t1", "1080p", 100, 100, 100*5000, 0),
		cmcdRow("t2", "480p", 50, 50, 50*1000, 5),
		cmcdRow("t3", "", 10, 0, 0, 0),
		fillcast.UsageRow{Title: "t4", Requests: 7, Status2xx: 7}, // no CMCD
	))

	checkRows(t, tr.Report(DimTitle, 0), []Row{
		{Key: "t1", Plays: 4, Startups: 3, StartupP50MS: 1000, StartupP95MS: 2000, PlayedS: 300,
			RebufferRatio: 2000.0 / (300_000 + 2000), BitrateKbps: (2000*100 + 4000*50 + 3000*50 + 2000*100) / 300.0,
			FatalErrors: 1, ErrorRate: 0.25, CMCDRequests: 200, CMCDBitrateKbps: 740_000 / 180.0, StarvationRatio: 0.01},
		{Key: "t2", CMCDRequests: 50, CMCDBitrateKbps: 1000, StarvationRatio: 0.1},
		{Key: "t3", CMCDRequests: 10},
	})
	checkRows(t, tr.Report(DimSite, 0), []Row{
		{Key: "s1", Plays: 3, Startups: 2, StartupP50MS: 800, StartupP95MS: 1000, PlayedS: 250,
			RebufferRatio: 2000.0 / (250_000 + 2000), BitrateKbps: (2000*100 + 4000*50 + 2000*100) / 250.0,
			FatalErrors: 1, ErrorRate: 1.0 / 3},
		{Key: "s2", Plays: 1, Startups: 1, StartupP50MS: 2000, StartupP95MS: 2000, PlayedS: 50, BitrateKbps: 3000},
		{Key: "s3", FatalErrors: 1, ErrorRate: 1},
	})
	checkRows(t, tr.Report(DimAppliance, 0), []Row{
		{Key: "a1", Plays: 2, Startups: 2, StartupP50MS: 800, StartupP95MS: 1000, PlayedS: 250,
			RebufferRatio: 2000.0 / (250_000 + 2000), BitrateKbps: (2000*100 + 4000*50 + 2000*100) / 250.0,
			FatalErrors: 1, ErrorRate: 0.5, CMCDRequests: 260, CMCDBitrateKbps: 790_000 / 230.0, StarvationRatio: 7.0 / 260},
		{Key: "a2", Plays: 1, Startups: 1, StartupP50MS: 2000, StartupP95MS: 2000, PlayedS: 50, BitrateKbps: 3000},
	})
	if got := tr.Report(DimTitle, 1); len(got) != 1 || got[0].Key != "t1" {
		t.Errorf("Report(title, 1) = %+v, want t1 alone", got)
	}
	if got := tr.Report("region", 0); got != nil {
		t.Errorf("Report(region) = %+v, want nil", got)
	}
}

func TestJSONShape(t *testing.T) {
	tr, _ := newTracker(t, Config{})
	tr.Apply(1, []events.Event{play("t1", "s1", t0), qoe("t1", "s1", "a1", 800, 10, 0, 2400, t0)})
	b, err := json.Marshal(tr.Snapshot(0))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["window_s"] != 900.0 {
		t.Errorf("window_s = %v, want 900", got["window_s"])
	}
	for _, dim := range []string{"titles", "sites", "appliances"} {
		rows, ok := got[dim].([]any)
		if !ok || len(rows) != 1 {
			t.Fatalf("%s = %v, want one row", dim, got[dim])
		}
		row := rows[0].(map[string]any)
		for _, k := range []string{"key", "plays", "startup_p50_ms", "startup_p95_ms", "rebuffer_ratio", "bitrate_kbps",
			"error_rate", "cmcd_bitrate_kbps", "starvation_ratio"} {
			if _, ok := row[k]; !ok {
				t.Errorf("%s row has no %q: %s", dim, k, b)
			}
		}
	}
	empty, _ := newTracker(t, Config{})
	if b, _ := json.Marshal(empty.Snapshot(0)); string(b) != `{"window_s":900,"titles":[],"sites":[],"appliances":[]}` {
		t.Errorf("empty snapshot = %s", b)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string // "" means valid
	}{
		{"zero", Config{}, ""},
		{"default", DefaultConfig(), ""},
		{"one minute", Config{Window: time.Minute}, ""},
		{"a day", Config{Window: 24 * time.Hour}, ""},
		{"metric keys = max keys", Config{MaxKeys: 5, MetricKeys: 5}, ""},
		{"negative window", Config{Window: -time.Minute}, "Window"},
		{"seconds", Config{Window: 90 * time.Second}, "Window"},
		{"too long", Config{Window: 25 * time.Hour}, "Window"},
		{"negative max keys", Config{MaxKeys: -1}, "MaxKeys"},
		{"negative metric keys", Config{MetricKeys: -1}, "MetricKeys"},
		{"metric keys past max keys", Config{MaxKeys: 10, MetricKeys: 11}, "MetricKeys"},
		{"metric keys default below max keys", Config{MaxKeys: 10}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ce *fillcast.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || ce.Pkg != "qoe" {
				t.Fatalf("Validate = %v, want a qoe ConfigError on %s", err, tt.field)
			}
			if _, err := New(tt.cfg, nil); err == nil {
				t.Errorf("New accepted the config")
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	tr, c := newTracker(t, Config{Window: 2 * time.Minute, MaxKeys: 50})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				at := t0.Add(time.Duration(i) * time.Second)
				tr.Apply(0, []events.Event{play(fmt.Sprint("t", i%70), "s1", at), qoe(fmt.Sprint("t", w), "s1", "a1", 900, 5, 10, 2000, at)})
				tr.ApplyUsage(0, usage("a1", at, cmcdRow("t1", "", 10, 10, 20_000, 1)))
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			c.Set(t0.Add(time.Duration(i) * 3 * time.Second))
			tr.Report(DimTitle, 10)
			tr.Snapshot(5)
		}
	})
	wg.Wait()
	if got := len(tr.Report(DimTitle, 0)); got > 50 {
		t.Errorf("%d titles, want at most MaxKeys 50", got)
	}
}
