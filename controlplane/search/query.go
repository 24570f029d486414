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

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/standard"
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
	// Limit is the number of results; 0 means Config.DefaultLimit, and
	// more than Config.MaxLimit is cut to it.
	Limit int
}

// ParseRequest reads q, genre, year and limit from URL query values.
// Malformed numbers give an error wrapping ErrBadQuery.
func ParseRequest(v url.Values) (Request, error) {
	r := Request{Q: v.Get("q"), Genre: strings.TrimSpace(v.Get("genre"))}
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

// Facet sizes: every genre a catalog plausibly has, and decades of years.
const (
	genreFacetSize = 50
	yearFacetSize  = 100
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
	var main query.Query
	if len(q) >= 2 && q[0] == '"' && q[len(q)-1] == '"' {
		main = phraseQuery(strings.TrimSpace(q[1 : len(q)-1]))
	} else {
		main = textQuery(strings.Trim(q, `"`))
	}
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
	if len(filters) > 0 {
		main = bleve.NewConjunctionQuery(append([]query.Query{main}, filters...)...)
	}
	limit := x.limit(r.Limit)
	req := bleve.NewSearchRequestOptions(main, max(limit, x.cfg.Candidates), 0, false)
	req.AddFacet(fieldGenre, bleve.NewFacetRequest(fieldGenre, genreFacetSize))
	req.AddFacet(fieldYear, bleve.NewFacetRequest(fieldYear, yearFacetSize))
	res, err := x.run(ctx, req)
	if err != nil {
		return nil, err
	}
	out := &Results{
		Results: x.rank(res.Hits, limit, x.cfg.PopularityWeight),
		Total:   res.Total,
		Facets:  &Facets{Genre: facet(res.Facets[fieldGenre]), Year: facet(res.Facets[fieldYear])},
	}
	return out, nil
}

// Suggest completes a prefix typed into the search box: every word
// typed must begin a word of the name, so "star wa" finds "Star Wars".
// Whole-word matches rank above partial ones, and popularity weighs more
// than in Search.
func (x *Index) Suggest(ctx context.Context, prefix string, limit int) (*Results, error) {
	q, err := x.checkQuery(prefix)
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
	limit = x.limit(limit)
	req := bleve.NewSearchRequestOptions(main, max(limit, x.cfg.Candidates), 0, false)
	res, err := x.run(ctx, req)
	if err != nil {
		return nil, err
	}
	return &Results{Results: x.rank(res.Hits, limit, x.cfg.SuggestPopularityWeight), Total: res.Total}, nil
}

func (x *Index) run(ctx context.Context, req *bleve.SearchRequest) (*bleve.SearchResult, error) {
	x.mu.Lock()
	closed := x.closed
	x.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("search: %w", ctx.Err())
		}
		return nil, fmt.Errorf("search: %w", err)
	}
	return res, nil
}

// textQuery is the free-text query. Boosts put a name match well above
// cast and genre, and those above the description.
func textQuery(q string) query.Query {
	match := func(field, analyzer string, boost float64, fuzzy bool) query.Query {
		m := bleve.NewMatchQuery(q)
		m.SetField(field)
		m.Analyzer = analyzer
		m.SetBoost(boost)
		if fuzzy {
			m.SetAutoFuzziness(true)
		}
		return m
	}
	phrase := func(field, analyzer string, boost float64) query.Query {
		p := bleve.NewMatchPhraseQuery(q)
		p.SetField(field)
		p.Analyzer = analyzer
		p.SetBoost(boost)
		return p
	}
	qs := []query.Query{
		match(fieldName, anName, 6, false),
		match(fieldName, anName, 3, true),
		match(fieldCast, anName, 2, false),
		match(fieldCast, anName, 1, true),
		match(fieldGenre, anKeyword, 1, false),
		match(fieldDescription, standard.Name, 0.5, false),
	}
	if strings.ContainsFunc(q, isSpace) {
		qs = append(qs, phrase(fieldName, anName, 6), phrase(fieldDescription, standard.Name, 1))
	}
	return bleve.NewDisjunctionQuery(qs...)
}

// phraseQuery is a quoted query: the words in order, in the name, the
// cast or the description.
func phraseQuery(q string) query.Query {
	phrase := func(field, analyzer string, boost float64) query.Query {
		p := bleve.NewMatchPhraseQuery(q)
		p.SetField(field)
		p.Analyzer = analyzer
		p.SetBoost(boost)
		return p
	}
	return bleve.NewDisjunctionQuery(
		phrase(fieldName, anName, 6),
		phrase(fieldCast, anName, 2),
		phrase(fieldDescription, standard.Name, 1),
	)
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' }

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

func facet(fr *bsearch.FacetResult) []FacetCount {
	out := []FacetCount{}
	if fr == nil {
		return out
	}
	for _, t := range fr.Terms.Terms() {
		out = append(out, FacetCount{Value: t.Term, Count: t.Count})
	}
	return out
}
