// Package search is the control plane's full-text index of the catalog,
// built on bleve v2: it answers GET /v1/search (typo-tolerant matching
// over name, description, cast and genres, name matches ranked first,
// quoted phrases, genre and year facets, relevance blended with
// popularity) and GET /v1/search/suggest (prefix autocomplete on names).
//
// Every control-plane node keeps its own index in step with the
// replicated catalog: the node's state-change hook calls Upsert and
// Delete for each changed title, and Rebuild with the whole catalog after
// a snapshot restore or at start. The index is throw-away by default (a
// temporary directory removed at Close); Config.Path keeps it.
//
// An API handler builds a Request with ParseRequest(r.URL.Query()) and
// calls Search or Suggest with the request's context; errors.Is(err,
// ErrBadQuery) maps to 400 with err.Error() as the message.
package search

import (
	"errors"
	"fmt"

	"github.com/fillcast/fillcast"
)

// Errors the API maps to status codes. ErrEmptyQuery, ErrQueryTooLong and
// ErrBadLimit wrap ErrBadQuery (400; the message says what to fix).
var (
	ErrBadQuery     = errors.New("search: bad query")
	ErrEmptyQuery   = fmt.Errorf("%w: q is empty; type at least one letter", ErrBadQuery)
	ErrQueryTooLong = fmt.Errorf("%w: q is too long", ErrBadQuery)
	ErrBadLimit     = fmt.Errorf("%w: limit must be a whole number", ErrBadQuery)
	ErrClosed       = errors.New("search: index closed")
)

// Config configures an Index.
type Config struct {
	// Path is the index directory, kept across restarts; "" means a
	// private temporary directory removed at Close (the default: every
	// node rebuilds its index from the catalog at start).
	Path string
	// MaxQueryRunes bounds q. Zero means 200.
	MaxQueryRunes int
	// DefaultLimit is the number of results when the request names none.
	// Zero means 10.
	DefaultLimit int
	// MaxLimit caps a request's limit. Zero means 100.
	MaxLimit int
	// PopularityWeight is the share of popularity in a search result's
	// score, in [0, 1); the rest is relevance. Zero means 0.25.
	PopularityWeight float64
	// SuggestPopularityWeight is the same for suggestions, where a short
	// prefix says little and popularity says more. Zero means 0.5.
	SuggestPopularityWeight float64
	// Candidates is how many of the most relevant titles are re-ranked
	// with popularity, at least the limit. Zero means 50.
	Candidates int
	// IncludeNotReady indexes titles whose status is not "ready" (nor
	// empty); by default they stay out, since a player cannot play them.
	IncludeNotReady bool
}

// DefaultConfig returns an in-memory configuration.
func DefaultConfig() Config {
	return Config{
		MaxQueryRunes:           200,
		DefaultLimit:            10,
		MaxLimit:                100,
		PopularityWeight:        0.25,
		SuggestPopularityWeight: 0.5,
		Candidates:              50,
	}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
// Zero fields mean their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.DefaultLimit > c.MaxLimit {
		return fillcast.ConfigErrorf("search", "DefaultLimit", "%d is above MaxLimit %d", c.DefaultLimit, c.MaxLimit)
	}
	for _, w := range []struct {
		field string
		v     float64
	}{{"PopularityWeight", c.PopularityWeight}, {"SuggestPopularityWeight", c.SuggestPopularityWeight}} {
		if w.v < 0 || w.v >= 1 {
			return fillcast.ConfigErrorf("search", w.field, "%g outside [0, 1)", w.v)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxQueryRunes <= 0 {
		c.MaxQueryRunes = d.MaxQueryRunes
	}
	if c.DefaultLimit <= 0 {
		c.DefaultLimit = d.DefaultLimit
	}
	if c.MaxLimit <= 0 {
		c.MaxLimit = d.MaxLimit
	}
	if c.PopularityWeight == 0 {
		c.PopularityWeight = d.PopularityWeight
	}
	if c.SuggestPopularityWeight == 0 {
		c.SuggestPopularityWeight = d.SuggestPopularityWeight
	}
	if c.Candidates <= 0 {
		c.Candidates = d.Candidates
	}
	return c
}
