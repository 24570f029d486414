// Package qoe measures the viewers' quality of experience over the
// recent past, per title, per site and per appliance: what the operator
// page and GET /v1/ops/qoe show, and what Prometheus scrapes.
//
// A Tracker is one of a control-plane node's projections of the event
// stream (package stream). It folds three kinds of player events
// (package events) — play, error and qoe — and the CMCD that appliances
// sum in their usage summaries (fillcast.Usage, ApplyUsage). Per key of
// each dimension it answers:
//
//   - plays: play events; in a dimension where they do not name the key
//     (players name the appliance on qoe and error events only), the
//     playbacks that started, which each send one qoe event with
//     startup_ms. Plays is the larger of the two.
//   - startup time p50 and p95, from startup_ms, in a fixed log-bucket
//     histogram whose quantiles are within StartupErrorBound (4.4 %) of
//     the sample of their rank;
//   - rebuffer ratio: rebuffer_ms / (played_s·1000 + rebuffer_ms);
//   - bitrate: the mean of bitrate_kbps weighted by played_s;
//   - error rate: fatal error events per play, fatal / max(plays, 1), so
//     that errors whose play fell out of the window still show;
//   - from CMCD, for titles and appliances only (a summary's site is the
//     appliance's, not the viewers'): the mean br over the requests that
//     sent it, and the share of CMCD requests that said bs (the player's
//     buffer ran empty).
//
// The figures cover a rolling window (Config.Window) in one-minute
// buckets, placed by the time the event happened (ts; a usage summary's
// start), not when it arrived: replaying the stream after a restart puts
// old events in old minutes, outside the window, and a Tracker therefore
// needs no checkpoint. Events ahead of the clock count in the current
// minute. Each dimension holds at most Config.MaxKeys keys; past it, the
// tenth of the keys with the fewest plays is dropped at once.
//
// Events and usage summaries are messages of the same stream, numbered
// in one sequence: Apply and ApplyUsage share the sequence that Applied
// returns, and each skips a message at or before it. A Tracker is safe
// for concurrent use and a prometheus.Collector.
package qoe

import (
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
)

// Dimensions the figures are kept by, the dim argument of Report and the
// "dimension" label of the metrics.
const (
	DimTitle     = "title"
	DimSite      = "site"
	DimAppliance = "appliance"
)

// Indexes of the dimensions in a Tracker's arrays.
const (
	dimTitle = iota
	dimSite
	dimAppliance
	numDims
)

// dimIndex returns the index of a dimension's name, -1 for none.
func dimIndex(name string) int {
	switch name {
	case DimTitle:
		return dimTitle
	case DimSite:
		return dimSite
	case DimAppliance:
		return dimAppliance
	}
	return -1
}

// Bucket is the width of the window's buckets: the window moves a
// minute at a time.
const Bucket = time.Minute

// Config tunes a Tracker. The zero value of every field means its
// default, as DefaultConfig spells out.
type Config struct {
	// Window is how far back the figures go, in whole minutes, from 1m
	// to 24h: the clock's current minute and the Window/Bucket - 1
	// minutes before it. Zero means 15m.
	Window time.Duration
	// MaxKeys bounds the keys of each dimension. Zero means 10,000.
	MaxKeys int
	// MetricKeys is how many keys of each dimension, those with the
	// most plays, the metrics carry, to bound their cardinality. Zero
	// means 50, or MaxKeys when that is smaller; at most MaxKeys.
	MetricKeys int
}

// DefaultConfig returns the configuration the zero Config stands for.
func DefaultConfig() Config {
	return Config{Window: 15 * time.Minute, MaxKeys: 10_000, MetricKeys: 50}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = d.MaxKeys
	}
	if c.MetricKeys == 0 {
		c.MetricKeys = min(d.MetricKeys, max(c.MaxKeys, 1))
	}
	return c
}

// Validate reports the first field that cannot work, saying what to use
// instead. Zero fields are valid: they mean the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Window < Bucket || c.Window > 24*time.Hour || c.Window%Bucket != 0:
		return fillcast.ConfigErrorf("qoe", "Window", "%v: want whole minutes from 1m to 24h, such as 15m", c.Window)
	case c.MaxKeys < 1:
		return fillcast.ConfigErrorf("qoe", "MaxKeys", "%d: want a positive number of keys per dimension, such as 10000", c.MaxKeys)
	case c.MetricKeys < 1 || c.MetricKeys > c.MaxKeys:
		return fillcast.ConfigErrorf("qoe", "MetricKeys", "%d: want 1 to MaxKeys (%d), such as 50", c.MetricKeys, c.MaxKeys)
	}
	return nil
}

// Tracker keeps the quality-of-experience figures of the recent past.
// Create one with New.
type Tracker struct {
	cfg   Config
	now   func() time.Time
	descs metricDescs

	mu     sync.Mutex
	seq    uint64
	last   int64  // the latest minute the clock gave (Unix minutes)
	slots  []slot // the window's minutes, slot m % len(slots) for minute m
	totals [numDims]map[string]*agg
}

var _ prometheus.Collector = (*Tracker)(nil)

// New returns an empty Tracker. now is the clock (nil means time.Now).
func New(cfg Config, now func() time.Time) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if now == nil {
		now = time.Now
	}
	t := &Tracker{cfg: cfg, now: now, descs: newDescs(), slots: make([]slot, cfg.Window/Bucket)}
	for d := range t.totals {
		t.totals[d] = map[string]*agg{}
	}
	return t, nil
}

// Reset empties the tracker, whose next message is the first of a new
// stream (the one it had folded is gone).
func (t *Tracker) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq, t.last = 0, 0
	t.slots = make([]slot, len(t.slots))
	for d := range t.totals {
		t.totals[d] = map[string]*agg{}
	}
}

// Applied returns the stream sequence of the last message applied, by
// Apply or ApplyUsage.
func (t *Tracker) Applied() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq
}

// skip reports whether the message at seq was applied already, and
// otherwise records it as applied. Sequence 0 (a message from no stream)
// always applies.
func (t *Tracker) skip(seq uint64) bool {
	if seq != 0 && seq <= t.seq {
		return true
	}
	t.seq = max(t.seq, seq)
	return false
}

// Apply folds the play, error and qoe events of the batch at stream
// sequence seq; a batch at or before the last message applied is
// skipped. Events older than the window, and fields out of the bounds
// package events sets, are left out.
func (t *Tracker) Apply(seq uint64, batch []events.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.skip(seq) {
		return
	}
	now := t.advance()
	for i := range batch {
		e := &batch[i]
		s, bin, ok := sampleOf(e)
		if !ok {
			continue
		}
		m, ok := t.minuteOf(e.TS, now)
		if !ok {
			continue
		}
		for d, key := range [numDims]string{e.Title, e.Site, e.Appliance} {
			if key != "" {
				t.add(d, key, m, &s, bin)
			}
		}
	}
}

// sampleOf returns what an event adds to its keys and the histogram bin
// of its startup time (-1 for none); ok is false for events that add
// nothing.
func sampleOf(e *events.Event) (s sums, bin int, ok bool) {
	bin = -1
	switch e.Type {
	case events.TypePlay:
		s.plays = 1
		return s, bin, true
	case events.TypeError:
		s.fatal = 1
		return s, bin, e.Fatal
	case events.TypeQoE:
	default:
		return s, bin, false
	}
	in := func(v, limit float64) bool { return v >= 0 && v <= limit } // false for NaN
	if !in(e.StartupMS, events.MaxStartupMS) || !in(e.PlayedS, events.MaxDurationS) ||
		!in(e.RebufferMS, events.MaxDurationS*1000) || !in(e.BitrateKbps, 1e6) {
		return s, bin, false
	}
	if e.StartupMS > 0 {
		s.starts, bin = 1, int(binOf(e.StartupMS))
	}
	s.playedMS, s.rebufferMS = int64(math.Round(e.PlayedS*1000)), int64(math.Round(e.RebufferMS))
	if e.BitrateKbps > 0 && s.playedMS > 0 {
		s.bitratePlayedMS, s.bitrateKbpsMS = s.playedMS, e.BitrateKbps*float64(s.playedMS)
	}
	return s, bin, bin >= 0 || s.playedMS > 0 || s.rebufferMS > 0
}

// ApplyUsage folds the CMCD of the usage summary at stream sequence seq
// into its appliance and its titles (every rendition of a title
// together); a message at or before the last one applied is skipped, and
// so is a summary that fails fillcast.Usage.Validate or starts before
// the window.
func (t *Tracker) ApplyUsage(seq uint64, u *fillcast.Usage) {
	valid := u != nil && u.Validate() == nil
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.skip(seq) || !valid {
		return
	}
	m, ok := t.minuteOf(u.Start, t.advance())
	if !ok {
		return
	}
	var all sums
	for i := range u.Titles {
		c := &u.Titles[i].CMCD
		if c.Requests == 0 {
			continue
		}
		s := sums{cmcdRequests: clampCount(c.Requests), cmcdBitrateRequests: clampCount(c.BitrateRequests),
			cmcdBitrateKbps: clampCount(c.BitrateKbpsSum), cmcdStarved: clampCount(c.Starved)}
		t.add(dimTitle, u.Titles[i].Title, m, &s, -1)
		all.add(&s)
	}
	if all.cmcdRequests > 0 {
		t.add(dimAppliance, u.Appliance, m, &all, -1)
	}
}
