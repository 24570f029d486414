package search

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fillcast/fillcast"

	"github.com/blevesearch/bleve/v2"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
)

// Request is a search: the query parameters of GET /v1/search.
type Request struct {
	// Q is the text typed; wrapped in double quotes it must match as a
	// phrase.
	Q string
	// Genre, when set, keeps titles of that genre (case-insensitive).
	Genre string
	// Year, when positive, keeps titles of that year.
	Year int
	// Kids keeps the titles a kids profile may see (rated all or 7+).
	Kids bool
	// Limit is the number of results; 0 means Config.DefaultLimit, and
	// more than Config.MaxLimit is cut to it.
	Limit int
	// SkipFacets leaves Results.Facets nil. Facets count every match,
	// not only those returned, and cost about as much as the search;
	// skip them when the page does not show them.
	SkipFacets bool
}

// ParseRequest reads q, genre, year, limit and facets (false or 0 to
// skip them) from URL query values. Malformed values give an error
// wrapping ErrBadQuery.
func ParseRequest(v url.Values) (Request, error) {
	r := Request{Q: v.Get("q"), Genre: strings.TrimSpace(v.Get("genre"))}
	switch v.Get("facets") {
	case "", "1", "true":
	case "0", "false":
		r.SkipFacets = true
	default:
		return r, fmt.Errorf("%w: facets must be true or false", ErrBadQuery)
	}
	if s := v.Get("year"); s != "" {
		y, err := strconv.Atoi(s)
		if err != nil || y < 0 || y > 9999 {
			return r, fmt.Errorf("%w: year must be a year such as 1999, not %.20q", ErrBadQuery, s)
		}
		r.Year = y
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return r, fmt.Errorf("%w, not %.20q", ErrBadLimit, s)
		}
		r.Limit = n
	}
	return r, nil
}

// Hit is one result.
type Hit struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

// FacetCount is one value of a facet and the number of matching titles
// that have it.
type FacetCount struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Facets counts every title the query matched (not only those returned)
// by genre and by year, most frequent first.
type Facets struct {
	Genre []FacetCount `json:"genre"`
	Year  []FacetCount `json:"year"`
}

// Results is the body of GET /v1/search and GET /v1/search/suggest.
type Results struct {
	Results []Hit `json:"results"`
	// Total is the number of titles that matched.
	Total uint64 `json:"total"`
	// Facets is nil for suggestions.
	Facets *Facets `json:"facets,omitempty"`
}

// facetSize bounds the facet values counted: every genre a catalog
// plausibly has, and every year.
const facetSize = 400

// Prefixes of the terms of fieldFacet.
const (
	genrePrefix = "g:"
	yearPrefix  = "y:"
)

// checkQuery trims q and checks it is neither empty nor too long.
func (x *Index) checkQuery(q string) (string, error) {
	q = strings.TrimSpace(q)
	if q == "" || q == `"` || q == `""` {
		return "", ErrEmptyQuery
	}
	if !utf8.ValidString(q) {
		return "", fmt.Errorf("%w: q is not valid UTF-8", ErrBadQuery)
	}
	if n := utf8.RuneCountInString(q); n > x.cfg.MaxQueryRunes {
		return "", fmt.Errorf("%w (%d characters); shorten it to %d", ErrQueryTooLong, n, x.cfg.MaxQueryRunes)
	}
	return q, nil
}

func (x *Index) limit(n int) int {
	if n <= 0 {
		return x.cfg.DefaultLimit
	}
	return min(n, x.cfg.MaxLimit)
}

// Search runs r: names matter most (exact words, then words within one
// or two typos, then whole phrases), then cast, genres and description;
// the most relevant candidates are re-ranked by blending in popularity.
func (x *Index) Search(ctx context.Context, r Request) (*Results, error) {
	q, err := x.checkQuery(r.Q)
	if err != nil {
		return nil, err
	}
	// A query of several words first asks for titles that have every
	// word (in some field, maybe with a typo), which is what people
	// mean and far fewer titles to score and count facets of; when none
	// has them all, any word will do.
	var main, loose query.Query
	if len(q) >= 2 && q[0] == '"' && q[len(q)-1] == '"' {
		main = phraseQuery(strings.TrimSpace(q[1 : len(q)-1]))
	} else {
		main, loose = x.textQuery(strings.Trim(q, `"`))
	}
	res, err := x.search(ctx, main, r)
	if err == nil && res.Total == 0 && loose != nil {
		res, err = x.search(ctx, loose, r)
	}
	if err != nil {
		return nil, err
	}
	limit := x.limit(r.Limit)
	out := &Results{Results: x.rank(res.Hits, limit, x.cfg.PopularityWeight), Total: res.Total}
	if !r.SkipFacets {
		out.Facets = facets(res.Facets[fieldFacet])
	}
	return out, nil
}

// search runs main with r's filters, limit and facets.
func (x *Index) search(ctx context.Context, main query.Query, r Request) (*bleve.SearchResult, error) {
	var filters []query.Query
	if r.Genre != "" {
		tq := bleve.NewTermQuery(strings.ToLower(r.Genre))
		tq.SetField(fieldGenre)
		filters = append(filters, tq)
	}
	if r.Year > 0 {
		tq := bleve.NewTermQuery(strconv.Itoa(r.Year))
		tq.SetField(fieldYear)
		filters = append(filters, tq)
	}
	if r.Kids {
		filters = append(filters, kidsFilter())
	}
	if len(filters) > 0 {
		main = bleve.NewConjunctionQuery(append([]query.Query{main}, filters...)...)
	}
	req := bleve.NewSearchRequestOptions(main, max(x.limit(r.Limit), x.cfg.Candidates), 0, false)
	if !r.SkipFacets {
		req.AddFacet(fieldFacet, bleve.NewFacetRequest(fieldFacet, facetSize))
	}
	return x.run(ctx, req)
}

// kidsFilter matches the titles rated for kids.
func kidsFilter() query.Query {
	var ors []query.Query
	for _, m := range []string{fillcast.MaturityAll, fillcast.Maturity7} {
		tq := bleve.NewTermQuery(m)
		tq.SetField(fieldMaturity)
		ors = append(ors, tq)
	}
	return bleve.NewDisjunctionQuery(ors...)
}

// Suggest completes a prefix typed into the search box, r.Q, with up to
// r.Limit titles (r.Kids filtering as in Search; the other fields are
// ignored): every word typed must begin a word of the name, so "star wa"
// finds "Star Wars".
// Whole-word matches rank above partial ones, and popularity weighs more
// than in Search.
func (x *Index) Suggest(ctx context.Context, r Request) (*Results, error) {
	q, err := x.checkQuery(r.Q)
	if err != nil {
		return nil, err
	}
	q = strings.Trim(q, `"`)
	pre := bleve.NewMatchQuery(q)
	pre.SetField(fieldSuggest)
	pre.Analyzer = anPrefixQuery
	pre.SetOperator(query.MatchQueryOperatorAnd)
	whole := bleve.NewMatchQuery(q)
	whole.SetField(fieldName)
	whole.SetBoost(2)
	main := bleve.NewBooleanQuery()
	main.AddMust(pre)
	main.AddShould(whole)
	if r.Kids {
		main.AddMust(kidsFilter())
	}
	limit := x.limit(r.Limit)
	req := bleve.NewSearchRequestOptions(main, max(limit, x.cfg.Candidates), 0, false)
	res, err := x.run(ctx, req)
	if err != nil {
		return nil, err
	}
	return &Results{Results: x.rank(res.Hits, limit, x.cfg.SuggestPopularityWeight), Total: res.Total}, nil
}

func (x *Index) run(ctx context.Context, req *bleve.SearchRequest) (*bleve.SearchResult, error) {
	// Not x.mu: a Rebuild holds it for seconds, and searches must go on.
	if x.closed.Load() {
		return nil, ErrClosed
	}
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		if x.closed.Load() {
			return nil, ErrClosed
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("search: %w", ctx.Err())
		}
		return nil, fmt.Errorf("search: %w", err)
	}
	return res, nil
}

// rank blends each hit's relevance (relative to the best hit) with its
// popularity (relative to the most popular title) and keeps the best
// limit.
func (x *Index) rank(hits bsearch.DocumentMatchCollection, limit int, w float64) []Hit {
	out := make([]Hit, 0, len(hits))
	if len(hits) == 0 {
		return out
	}
	best := hits[0].Score
	for _, h := range hits {
		best = max(best, h.Score)
	}
	pop := x.pop.Load()
	x.nmu.RLock()
	for _, h := range hits {
		s := (1 - w) * h.Score / best
		if pop.maxLog > 0 {
			s += w * pop.scores[h.ID] / pop.maxLog
		}
		out = append(out, Hit{ID: h.ID, Name: x.names[h.ID], Score: s})
	}
	x.nmu.RUnlock()
	slices.SortStableFunc(out, func(a, b Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out[:min(limit, len(out))]
}

// facets splits the combined facet field's counts by prefix, keeping
// bleve's order (most frequent first).
func facets(fr *bsearch.FacetResult) *Facets {
	f := &Facets{Genre: []FacetCount{}, Year: []FacetCount{}}
	if fr == nil {
		return f
	}
	for _, t := range fr.Terms.Terms() {
		if v, ok := strings.CutPrefix(t.Term, genrePrefix); ok {
			f.Genre = append(f.Genre, FacetCount{Value: v, Count: t.Count})
		} else if v, ok := strings.CutPrefix(t.Term, yearPrefix); ok {
			f.Year = append(f.Year, FacetCount{Value: v, Count: t.Count})
		}
	}
	return f
}
