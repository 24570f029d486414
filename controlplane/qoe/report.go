package qoe

import (
	"cmp"
	"math"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// Row is one key's figures over the window. A figure whose input the
// window lacks is 0: the count beside it (Startups, PlayedS,
// CMCDRequests) tells "no data" from "none".
type Row struct {
	// Key is the title, site or appliance id.
	Key string `json:"key"`
	// Plays counts the playbacks: play events, or where they do not
	// name the key, the playbacks that started (Startups), whichever is
	// larger.
	Plays int64 `json:"plays"`
	// StartupP50MS and StartupP95MS are quantiles of the startup times,
	// within StartupErrorBound of the startup time of their rank.
	StartupP50MS float64 `json:"startup_p50_ms"`
	StartupP95MS float64 `json:"startup_p95_ms"`
	// RebufferRatio is the share of the time spent stalled after
	// startup: rebuffer_ms / (played_s·1000 + rebuffer_ms).
	RebufferRatio float64 `json:"rebuffer_ratio"`
	// BitrateKbps is the mean bitrate played, weighted by played_s.
	BitrateKbps float64 `json:"bitrate_kbps"`
	// ErrorRate is the fatal errors per play: FatalErrors / max(Plays, 1).
	ErrorRate float64 `json:"error_rate"`
	// CMCDBitrateKbps is the mean br the players sent with their
	// requests (titles and appliances only).
	CMCDBitrateKbps float64 `json:"cmcd_bitrate_kbps"`
	// StarvationRatio is the share of the requests with CMCD that said
	// bs: the player's buffer had run empty (titles and appliances
	// only).
	StarvationRatio float64 `json:"starvation_ratio"`

	// Startups counts the startup times; PlayedS sums the seconds
	// played; FatalErrors counts the fatal error events; CMCDRequests
	// counts the requests that sent CMCD.
	Startups     int64   `json:"startups"`
	PlayedS      float64 `json:"played_s"`
	FatalErrors  int64   `json:"fatal_errors"`
	CMCDRequests int64   `json:"cmcd_requests"`
}

// row computes the figures of a key's sums.
func (a *agg) row(key string) Row {
	r := Row{Key: key, Plays: a.playCount(), Startups: a.starts, PlayedS: float64(a.playedMS) / 1000, FatalErrors: a.fatal,
		CMCDRequests: a.cmcdRequests}
	if len(a.startup) > 0 {
		r.StartupP50MS = math.Round(a.startup.quantile(0.5))
		r.StartupP95MS = math.Round(a.startup.quantile(0.95))
	}
	if d := a.playedMS + a.rebufferMS; d > 0 {
		r.RebufferRatio = float64(a.rebufferMS) / float64(d)
	}
	if a.bitratePlayedMS > 0 {
		r.BitrateKbps = a.bitrateKbpsMS / float64(a.bitratePlayedMS)
	}
	r.ErrorRate = float64(a.fatal) / float64(max(r.Plays, 1))
	if a.cmcdBitrateRequests > 0 {
		r.CMCDBitrateKbps = float64(a.cmcdBitrateKbps) / float64(a.cmcdBitrateRequests)
	}
	if a.cmcdRequests > 0 {
		r.StarvationRatio = float64(a.cmcdStarved) / float64(a.cmcdRequests)
	}
	return r
}

// Report returns the figures of dimension dim (DimTitle, DimSite or
// DimAppliance; nil for another), most plays first (then most CMCD
// requests, then by key), at most limit rows (limit ≤ 0: every key).
func (t *Tracker) Report(dim string, limit int) []Row {
	d := dimIndex(dim)
	if d < 0 {
		return nil
	}
	t.mu.Lock()
	t.advance()
	rows := t.rows(d)
	t.mu.Unlock()
	return top(rows, limit)
}

// rows returns dimension d's rows in no order; t.mu is held.
func (t *Tracker) rows(d int) []Row {
	rows := make([]Row, 0, len(t.totals[d]))
	for key, a := range t.totals[d] {
		rows = append(rows, a.row(key))
	}
	return rows
}

// top sorts rows, most plays first, and keeps limit of them (≤ 0: all).
func top(rows []Row, limit int) []Row {
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(b.Plays, a.Plays), cmp.Compare(b.CMCDRequests, a.CMCDRequests), cmp.Compare(a.Key, b.Key))
	})
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit:limit]
	}
	return rows
}

// Snapshot is the figures of the three dimensions: the body of GET
// /v1/ops/qoe.
type Snapshot struct {
	// WindowS is the window's length in seconds.
	WindowS int64 `json:"window_s"`
	// Titles, Sites and Appliances are each dimension's rows, most plays
	// first; never nil.
	Titles     []Row `json:"titles"`
	Sites      []Row `json:"sites"`
	Appliances []Row `json:"appliances"`
}

// Snapshot returns the figures of every dimension, at most limit rows in
// each (limit ≤ 0: every key), taken at one instant.
func (t *Tracker) Snapshot(limit int) Snapshot {
	t.mu.Lock()
	t.advance()
	var rows [numDims][]Row
	for d := range rows {
		rows[d] = t.rows(d)
	}
	t.mu.Unlock()
	return Snapshot{
		WindowS:    int64(t.cfg.Window.Seconds()),
		Titles:     top(rows[dimTitle], limit),
		Sites:      top(rows[dimSite], limit),
		Appliances: top(rows[dimAppliance], limit),
	}
}

// metricDescs describe the gauges a Tracker exports.
type metricDescs struct {
	startup, rebuffer, bitrate, errors, plays *prometheus.Desc
}

func newDescs() metricDescs {
	labels := []string{"dimension", "key"}
	return metricDescs{
		startup: prometheus.NewDesc("fillcast_qoe_startup_seconds",
			"Startup time (play request to first frame) over the QoE window, quantiles 0.5 and 0.95, by dimension (title, site, appliance) and key; top keys by plays only.",
			[]string{"dimension", "key", "quantile"}, nil),
		rebuffer: prometheus.NewDesc("fillcast_qoe_rebuffer_ratio",
			"Share of the playing time spent stalled after startup over the QoE window, by dimension and key; top keys by plays only.", labels, nil),
		bitrate: prometheus.NewDesc("fillcast_qoe_bitrate_kbps",
			"Mean bitrate played, weighted by time played, over the QoE window, by dimension and key; top keys by plays only.", labels, nil),
		errors: prometheus.NewDesc("fillcast_qoe_error_ratio",
			"Fatal player errors per play over the QoE window, by dimension and key; top keys by plays only.", labels, nil),
		plays: prometheus.NewDesc("fillcast_qoe_plays",
			"Playbacks over the QoE window, by dimension and key; top keys by plays only.", labels, nil),
	}
}

// Describe sends the descriptions of the gauges Collect sends.
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{t.descs.startup, t.descs.rebuffer, t.descs.bitrate, t.descs.errors, t.descs.plays} {
		ch <- d
	}
}

// Collect sends the gauges of the Config.MetricKeys keys with the most
// plays of each dimension. A key without startup times has no startup
// gauges, one without time played no rebuffer ratio, and one without a
// bitrate no bitrate gauge.
func (t *Tracker) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	t.advance()
	var rows [numDims][]Row
	for d := range rows {
		rows[d] = t.rows(d)
	}
	t.mu.Unlock()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		// Keys come from the stream; one that is no valid label value
		// (not UTF-8) is left out of the metrics, not the scrape failed.
		if m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, v, labels...); err == nil {
			ch <- m
		}
	}
	for d, name := range [numDims]string{DimTitle, DimSite, DimAppliance} {
		for _, r := range top(rows[d], t.cfg.MetricKeys) {
			gauge(t.descs.plays, float64(r.Plays), name, r.Key)
			gauge(t.descs.errors, r.ErrorRate, name, r.Key)
			if r.Startups > 0 {
				gauge(t.descs.startup, r.StartupP50MS/1000, name, r.Key, "0.5")
				gauge(t.descs.startup, r.StartupP95MS/1000, name, r.Key, "0.95")
			}
			if r.PlayedS > 0 || r.RebufferRatio > 0 {
				gauge(t.descs.rebuffer, r.RebufferRatio, name, r.Key)
			}
			if r.BitrateKbps > 0 {
				gauge(t.descs.bitrate, r.BitrateKbps, name, r.Key)
			}
		}
	}
}
