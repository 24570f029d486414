// Package trace generates synthetic request traces of one CDN site over
// several days, the workload of the cache simulations of issue 6
// (bench/cachesim, and the fill simulation bench/fillsim).
//
// The model: a catalog of titles, each a run of equal-duration segments
// of one rendition; every day a Zipf-distributed popularity over the
// titles ranked by an interest that drifts (a random walk of its
// logarithm); about one percent of the catalog released each day, at
// 18:00, announced a day earlier, entering among the most watched and
// fading over the following days; viewing sessions that start on a
// diurnal curve peaking around 21:00 and watch a contiguous run of
// segments in real time (many sample a few minutes and leave, most watch a
// good part of the title). The same Config and seed always give the same
// trace.
package trace

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrConfig is wrapped by the errors of Config.Validate.
var ErrConfig = errors.New("trace: bad config")

// Config shapes a trace. The zero value of every field means its default,
// as DefaultConfig spells out.
type Config struct {
	// Titles is the catalog at the start. Zero means 2000.
	Titles int
	// Segments is the mean number of segments of a title (each title has
	// between half and one and a half times this). Zero means 300.
	Segments int
	// SegmentDuration is the playing time of a segment. Zero means 6s.
	SegmentDuration time.Duration
	// SegmentBytes is the mean size of a segment; titles differ in
	// bitrate by a factor of three. Zero means 3 MB (4 Mbit/s).
	SegmentBytes int64
	// Days is how many days the trace covers. Zero means 7.
	Days int
	// SessionsPerDay is how many viewing sessions start each day. Zero
	// means 15000.
	SessionsPerDay int
	// Zipf is the exponent of popularity by rank. Zero means 0.8.
	Zipf float64
	// Drift is the standard deviation of the daily change of a title's
	// log interest. Zero means 0.3.
	Drift float64
	// NewPerDay is the share of the starting catalog released each day
	// (rounded, at least one). Zero means 0.01.
	NewPerDay float64
	// NewRank is the best rank a new release enters at on its first
	// evening: a rank drawn uniformly from 1 to NewRank. Zero means 20.
	NewRank int
	// NewFade is how much a new release's log interest falls each day
	// after its release, for a week. Zero means 0.4.
	NewFade float64
	// Start is midnight of the first day. Zero means 2026-01-05 UTC.
	Start time.Time
	// Seed seeds the generator.
	Seed uint64
}

// DefaultConfig returns the configuration that the zero Config stands for.
func DefaultConfig() Config {
	return Config{
		Titles:          2000,
		Segments:        300,
		SegmentDuration: 6 * time.Second,
		SegmentBytes:    3_000_000,
		Days:            7,
		SessionsPerDay:  15000,
		Zipf:            0.8,
		Drift:           0.3,
		NewPerDay:       0.01,
		NewRank:         20,
		NewFade:         0.4,
		Start:           time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC),
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setFloat := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.Titles, d.Titles)
	setInt(&c.Segments, d.Segments)
	setInt(&c.Days, d.Days)
	setInt(&c.SessionsPerDay, d.SessionsPerDay)
	setInt(&c.NewRank, d.NewRank)
	setFloat(&c.Zipf, d.Zipf)
	setFloat(&c.Drift, d.Drift)
	setFloat(&c.NewPerDay, d.NewPerDay)
	setFloat(&c.NewFade, d.NewFade)
	if c.SegmentDuration == 0 {
		c.SegmentDuration = d.SegmentDuration
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	if c.Start.IsZero() {
		c.Start = d.Start
	}
	return c
}

// Validate reports the first field that cannot work, saying what to use
// instead. Zero fields are valid: they mean the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Titles < 1 || c.Titles > 1_000_000:
		return fmt.Errorf("%w: titles %d: want 1 to 1000000, such as 2000", ErrConfig, c.Titles)
	case c.Segments < 2 || c.Segments > 100_000:
		return fmt.Errorf("%w: segments %d: want 2 to 100000 per title, such as 300", ErrConfig, c.Segments)
	case c.SegmentDuration <= 0:
		return fmt.Errorf("%w: segment duration %v: want a positive duration, such as 6s", ErrConfig, c.SegmentDuration)
	case c.SegmentBytes < 1:
		return fmt.Errorf("%w: segment bytes %d: want a positive size, such as 3000000", ErrConfig, c.SegmentBytes)
	case c.Days < 1 || c.Days > 365:
		return fmt.Errorf("%w: days %d: want 1 to 365, such as 7", ErrConfig, c.Days)
	case c.SessionsPerDay < 1 || c.SessionsPerDay > 10_000_000:
		return fmt.Errorf("%w: sessions per day %d: want 1 to 10000000, such as 15000", ErrConfig, c.SessionsPerDay)
	case !finite(c.Zipf) || c.Zipf < 0 || c.Zipf > 5:
		return fmt.Errorf("%w: zipf %v: want an exponent in [0, 5], such as 0.8", ErrConfig, c.Zipf)
	case !finite(c.Drift) || c.Drift < 0 || c.Drift > 5:
		return fmt.Errorf("%w: drift %v: want a daily log-interest deviation in [0, 5], such as 0.3", ErrConfig, c.Drift)
	case !finite(c.NewPerDay) || c.NewPerDay < 0 || c.NewPerDay > 1:
		return fmt.Errorf("%w: new per day %v: want a share of the catalog in [0, 1], such as 0.01", ErrConfig, c.NewPerDay)
	case c.NewRank < 1:
		return fmt.Errorf("%w: new rank %d: want a rank of 1 or more, such as 20", ErrConfig, c.NewRank)
	case !finite(c.NewFade) || c.NewFade < 0:
		return fmt.Errorf("%w: new fade %v: want a non-negative daily fall, such as 0.4", ErrConfig, c.NewFade)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Title is one title of the trace's catalog.
type Title struct {
	ID           string
	Segments     int
	SegmentBytes int64 // mean segment size; see Trace.SegmentSize
	// Release is when the title becomes playable; zero for the titles of
	// the starting catalog.
	Release time.Time
	// Announced is when the studio delivered it and the catalog learned
	// its release: a day before Release. Zero with Release.
	Announced time.Time
}

// Bytes is the size of the whole title.
func (t Title) Bytes() int64 {
	var n int64
	for s := range t.Segments {
		n += segmentSize(t, s)
	}
	return n
}

// Session is one viewer watching segments First to First+Count-1 of a
// title, one segment per SegmentDuration from Start.
type Session struct {
	Start time.Duration // since Config.Start
	Title int32         // index into Trace.Titles
	First int32
	Count int32
}

// Request is one segment request.
type Request struct {
	At      time.Duration // since Config.Start
	Title   int32         // index into Trace.Titles
	Segment int32
	Session int32 // index into Trace.Sessions
}

// Trace is a generated workload.
type Trace struct {
	Config   Config // defaults filled in
	Titles   []Title
	Sessions []Session // by start time
	Requests []Request // by time
}

// Time returns the wall time of an offset into the trace.
func (t *Trace) Time(at time.Duration) time.Time { return t.Config.Start.Add(at) }

// Path is the segment's path inside its title, in the origin's layout.
func (t *Trace) Path(seg int) string {
	return fmt.Sprintf("720p/seg-%05d.m4s", seg+1)
}

// SegmentSize is the size of one segment: the title's mean, give or take
// 10 %, fixed by the title and segment number.
func (t *Trace) SegmentSize(title, seg int) int64 {
	return segmentSize(t.Titles[title], seg)
}

func segmentSize(t Title, seg int) int64 {
	h := uint64(seg+1) * 0x9e3779b97f4a7c15
	for i := 0; i < len(t.ID); i++ {
		h = (h ^ uint64(t.ID[i])) * 0x100000001b3
	}
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	f := 0.9 + 0.2*float64(h>>11)/(1<<53)
	return max(1, int64(f*float64(t.SegmentBytes)))
}

// CatalogBytes is the size of every title of the trace, new releases
// included.
func (t *Trace) CatalogBytes() int64 {
	var n int64
	for _, ti := range t.Titles {
		n += ti.Bytes()
	}
	return n
}
