// Package popularity tracks how much each title is watched in each region
// and forecasts tomorrow's demand, the first step of off-peak fills
// (issue 6): popularity → placement → fill manifests.
//
// The unit is views: bytes streamed divided by the title's size. The size
// of a title is the bytes of its whole packaged set (every rendition, as
// the catalog's file list sums it), because that is what a fill copies and
// what an appliance stores. A score is therefore "bytes served per byte
// stored", the value density placement ranks titles by when it packs a
// cache. It is not the number of viewers: a viewer streams one rendition
// at a time, so one full view counts as a fraction of one.
//
// Observations come from two sources. Appliance heartbeats report the
// bytes served per title since the previous beat (the ground truth, a few
// seconds late); playback requests count as Config.StartFraction of the
// title's size each, a leading signal that reaches the leader at once. The
// two overlap, but every title is inflated the same way, so the ranking
// placement uses does not change.
//
// Scores decay exponentially with Config.HalfLife: an observation of age a
// counts 2^(-a/HalfLife). Decay is applied lazily (each entry stores its
// value and the time it was last brought up to date), so an observation
// costs a map lookup and a power of two, and observations may arrive out
// of order.
//
// Forecast is the decayed score, which tracks the recent viewing rate,
// with one correction: a new release has no history when it matters most,
// the night before it comes out. From Config.PriorLead before its release
// until Config.PriorTail after it, a registered title scores at least the
// prior: Config.PriorFactor times the score of the region's
// Config.PriorRank-th most popular title. The fill planner thus places it
// with the current hits.
//
// A Tracker is safe for concurrent use. It does no I/O; the control-plane
// leader feeds it, persists Snapshot and Restores it after an election.
package popularity

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrConfig is wrapped by the errors of Config.Validate.
var ErrConfig = errors.New("popularity: bad config")

// ErrBadInput is wrapped by the errors of Observe, AddTitle and Restore
// for input that cannot be used.
var ErrBadInput = errors.New("popularity: bad input")

// Config tunes a Tracker. The zero value of every field means its
// default, as DefaultConfig spells out.
type Config struct {
	// HalfLife is how fast old viewing stops counting. A day follows a
	// new hit within an evening and still remembers last week's series.
	// Zero means 24h.
	HalfLife time.Duration

	// StartFraction is how many views one playback start counts for,
	// before the appliance reports the bytes. Zero means 0.25; negative
	// values are invalid. Use a tiny positive value to ignore starts.
	StartFraction float64

	// PriorRank picks the region's title whose score a new release gets:
	// the PriorRank-th most popular (1 is the top title). When the region
	// knows fewer titles, the least popular of them is used. Zero means 10.
	PriorRank int

	// PriorFactor multiplies the prior. Zero means 1.
	PriorFactor float64

	// PriorLead is how long before its release a new title starts getting
	// the prior: long enough to cover the fill window of the night
	// before. Zero means 36h.
	PriorLead time.Duration

	// PriorTail is how long after its release the prior still holds while
	// the title builds its own history. Zero means 48h.
	PriorTail time.Duration

	// MinViews is the decayed score under which Prune forgets an entry.
	// Zero means 0.001.
	MinViews float64
}

// DefaultConfig returns the configuration that the zero Config stands for.
func DefaultConfig() Config {
	return Config{
		HalfLife:      24 * time.Hour,
		StartFraction: 0.25,
		PriorRank:     10,
		PriorFactor:   1,
		PriorLead:     36 * time.Hour,
		PriorTail:     48 * time.Hour,
		MinViews:      0.001,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.HalfLife == 0 {
		c.HalfLife = d.HalfLife
	}
	if c.StartFraction == 0 {
		c.StartFraction = d.StartFraction
	}
	if c.PriorRank == 0 {
		c.PriorRank = d.PriorRank
	}
	if c.PriorFactor == 0 {
		c.PriorFactor = d.PriorFactor
	}
	if c.PriorLead == 0 {
		c.PriorLead = d.PriorLead
	}
	if c.PriorTail == 0 {
		c.PriorTail = d.PriorTail
	}
	if c.MinViews == 0 {
		c.MinViews = d.MinViews
	}
	return c
}

// Validate reports the first field that cannot work, saying what to use
// instead. Zero fields are valid: they mean the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.HalfLife < time.Minute:
		return fmt.Errorf("%w: half-life %v: want at least 1m, such as 24h", ErrConfig, c.HalfLife)
	case !finite(c.StartFraction) || c.StartFraction < 0 || c.StartFraction > 10:
		return fmt.Errorf("%w: start fraction %v: want views per playback start in [0, 10], such as 0.25", ErrConfig, c.StartFraction)
	case c.PriorRank < 1:
		return fmt.Errorf("%w: prior rank %d: want a rank of 1 or more, such as 10", ErrConfig, c.PriorRank)
	case !finite(c.PriorFactor) || c.PriorFactor < 0:
		return fmt.Errorf("%w: prior factor %v: want a non-negative multiplier, such as 1", ErrConfig, c.PriorFactor)
	case c.PriorLead < 0 || c.PriorTail < 0:
		return fmt.Errorf("%w: prior lead %v, tail %v: want non-negative durations, such as 36h and 48h", ErrConfig, c.PriorLead, c.PriorTail)
	case !finite(c.MinViews) || c.MinViews < 0:
		return fmt.Errorf("%w: min views %v: want a small non-negative score, such as 0.001", ErrConfig, c.MinViews)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Observation is viewing reported for one title in one region.
type Observation struct {
	Region string
	Title  string
	// Bytes streamed (from a heartbeat's title_bytes); negative is
	// invalid.
	Bytes int64
	// Starts is the number of playback requests; each counts
	// Config.StartFraction views once the title's size is known.
	Starts int
	// At is when the viewing happened; zero means the Tracker's clock.
	At time.Time
}

// Score is a title's forecast demand in a region.
type Score struct {
	Title string  `json:"title"`
	Views float64 `json:"views"` // decayed views, or the prior when Boosted
	// Boosted says Views is the new-release prior, larger than the
	// title's own history.
	Boosted bool `json:"boosted,omitempty"`
}
