package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/standard"
	"github.com/blevesearch/bleve/v2/analysis/token/edgengram"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/truncate"
	"github.com/blevesearch/bleve/v2/analysis/token/unicodenorm"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/single"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"

	"github.com/fillcast/fillcast"
)

// Field and analyzer names of the index mapping.
const (
	fieldName        = "name"
	fieldSuggest     = "suggest"
	fieldDescription = "description"
	fieldCast        = "cast"
	fieldGenre       = "genre"
	fieldYear        = "year"
	// fieldFacet holds "g:<genre>" and "y:<year>" terms: one field's
	// doc values serve both facets, which halves their cost per match.
	fieldFacet = "facet"

	// anName keeps every word (no stop list: "Up" and "It" are titles).
	anName = "fc_name"
	// anPrefix indexes each word's leading 1..maxPrefix characters.
	anPrefix = "fc_prefix"
	// anPrefixQuery cuts query words to maxPrefix so long ones still
	// meet the indexed prefixes.
	anPrefixQuery = "fc_prefix_query"
	// anKeyword is the whole value, lower-cased: genres.
	anKeyword = "fc_keyword"

	maxPrefix = 20
)

// Index is the catalog's search index. Its methods are safe for
// concurrent use.
type Index struct {
	cfg    Config
	logger *slog.Logger
	idx    bleve.Index

	mu      sync.Mutex  // serialises writes and Close
	closed  atomic.Bool // set under mu, read without it
	scratch string      // the temporary directory of an in-memory index

	nmu   sync.RWMutex // guards names, the id → name table of results
	names map[string]string

	pop atomic.Pointer[popularity]
}

// popularity holds the caller's scores with their normaliser.
type popularity struct {
	scores map[string]float64
	maxLog float64
}

// Open creates the index (or opens the one at cfg.Path). logger may be
// nil.
func Open(cfg Config, logger *slog.Logger) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	m, err := newMapping()
	if err != nil {
		return nil, fmt.Errorf("search: mapping: %w", err)
	}
	path, scratch := cfg.Path, ""
	if path == "" {
		// A scorch index without a path never merges its segments, and
		// every upsert adds one, so searches slow down without bound;
		// a private directory (in the page cache in practice) lets the
		// merger run. It is removed at Close.
		if scratch, err = os.MkdirTemp("", "fillcast-search-"); err != nil {
			return nil, fmt.Errorf("search: scratch dir: %w", err)
		}
		path = filepath.Join(scratch, "index")
	}
	// A scratch index's batches need not wait for fsync: nothing
	// reads it after the process ends. A kept index waits, so that
	// what Close leaves behind is complete.
	rt := map[string]any{"unsafe_batch": scratch != ""}
	var idx bleve.Index
	if _, statErr := os.Stat(path); statErr == nil {
		idx, err = bleve.OpenUsing(path, rt)
	} else {
		idx, err = bleve.NewUsing(path, m, scorch.Name, scorch.Name, rt)
	}
	if err != nil {
		if scratch != "" {
			os.RemoveAll(scratch)
		}
		return nil, fmt.Errorf("search: open index %q: %w", path, err)
	}
	x := &Index{cfg: cfg, logger: logger, idx: idx, scratch: scratch, names: map[string]string{}}
	if cfg.Path != "" {
		if err := x.loadNames(); err != nil {
			idx.Close()
			return nil, err
		}
	}
	x.pop.Store(&popularity{})
	return x, nil
}

// loadNames fills the id → name table from an on-disk index.
func (x *Index) loadNames() error {
	n, err := x.idx.DocCount()
	if err != nil {
		return fmt.Errorf("search: count: %w", err)
	}
	req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), int(n), 0, false)
	req.Fields = []string{fieldName}
	res, err := x.idx.Search(req)
	if err != nil {
		return fmt.Errorf("search: load names: %w", err)
	}
	for _, h := range res.Hits {
		name, _ := h.Fields[fieldName].(string)
		x.names[h.ID] = name
	}
	return nil
}

func newMapping() (*mapping.IndexMappingImpl, error) {
	m := bleve.NewIndexMapping()
	if err := m.AddCustomTokenFilter("fc_edge", map[string]any{
		"type": edgengram.Name, "min": 1.0, "max": float64(maxPrefix),
	}); err != nil {
		return nil, err
	}
	if err := m.AddCustomTokenFilter("fc_truncate", map[string]any{
		"type": truncate.Name, "length": float64(maxPrefix),
	}); err != nil {
		return nil, err
	}
	if err := m.AddCustomTokenFilter("fc_nfkc", map[string]any{
		"type": unicodenorm.Name, "form": unicodenorm.NFKC,
	}); err != nil {
		return nil, err
	}
	analyzers := map[string][]string{
		anName:        {"fc_nfkc", lowercase.Name},
		anPrefix:      {"fc_nfkc", lowercase.Name, "fc_edge"},
		anPrefixQuery: {"fc_nfkc", lowercase.Name, "fc_truncate"},
	}
	for name, filters := range analyzers {
		if err := m.AddCustomAnalyzer(name, map[string]any{
			"type": custom.Name, "tokenizer": unicode.Name, "token_filters": filters,
		}); err != nil {
			return nil, err
		}
	}
	if err := m.AddCustomAnalyzer(anKeyword, map[string]any{
		"type": custom.Name, "tokenizer": single.Name, "token_filters": []string{lowercase.Name},
	}); err != nil {
		return nil, err
	}
	field := func(analyzer string, positions, docValues, store bool) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = analyzer
		f.Store = store
		f.IncludeTermVectors = positions // phrase queries need positions
		f.IncludeInAll = false
		f.DocValues = docValues // facets read doc values
		return f
	}
	doc := bleve.NewDocumentStaticMapping()
	doc.AddFieldMappingsAt(fieldName, field(anName, true, false, true))
	doc.AddFieldMappingsAt(fieldSuggest, field(anPrefix, false, false, false))
	doc.AddFieldMappingsAt(fieldDescription, field(standard.Name, true, false, false))
	doc.AddFieldMappingsAt(fieldCast, field(anName, true, false, false))
	doc.AddFieldMappingsAt(fieldGenre, field(anKeyword, false, false, false))
	doc.AddFieldMappingsAt(fieldYear, field(anKeyword, false, false, false))
	doc.AddFieldMappingsAt(fieldFacet, field(anKeyword, false, true, false))
	m.DefaultMapping = doc
	m.DefaultAnalyzer = anName
	m.StoreDynamic = false
	m.IndexDynamic = false
	m.DocValuesDynamic = false
	return m, m.Validate()
}

// document is what the index stores for a title.
func document(t *fillcast.Title) map[string]any {
	d := map[string]any{
		fieldName:        t.Name,
		fieldSuggest:     t.Name,
		fieldDescription: t.Description,
		fieldCast:        t.Cast,
		fieldGenre:       t.Genres,
	}
	facets := make([]string, 0, len(t.Genres)+1)
	for _, g := range t.Genres {
		facets = append(facets, genrePrefix+g)
	}
	if t.Year > 0 {
		d[fieldYear] = strconv.Itoa(t.Year)
		facets = append(facets, yearPrefix+strconv.Itoa(t.Year))
	}
	d[fieldFacet] = facets
	return d
}

func (x *Index) indexable(t *fillcast.Title) bool {
	return x.cfg.IncludeNotReady || t.Status == "" || t.Status == fillcast.StatusReady
}

// Upsert adds or replaces a title; a title that is not ready (unless
// Config.IncludeNotReady) is removed instead, so that search never
// offers what cannot be played.
func (x *Index) Upsert(ctx context.Context, t fillcast.Title) error {
	if err := fillcast.ValidateTitleID(t.ID); err != nil {
		return fmt.Errorf("search: upsert: %w", err)
	}
	if !x.indexable(&t) {
		return x.Delete(ctx, t.ID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("search: upsert %s: %w", t.ID, err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed.Load() {
		return ErrClosed
	}
	// The name goes in first, so that a search never finds the
	// title without it.
	x.nmu.Lock()
	old, had := x.names[t.ID]
	x.names[t.ID] = t.Name
	x.nmu.Unlock()
	if err := x.idx.Index(t.ID, document(&t)); err != nil {
		x.nmu.Lock()
		if had {
			x.names[t.ID] = old
		} else {
			delete(x.names, t.ID)
		}
		x.nmu.Unlock()
		return fmt.Errorf("search: upsert %s: %w", t.ID, err)
	}
	return nil
}

// Delete removes a title; deleting an unknown title is not an error.
func (x *Index) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("search: delete %s: %w", id, err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed.Load() {
		return ErrClosed
	}
	x.nmu.RLock()
	_, ok := x.names[id]
	x.nmu.RUnlock()
	if !ok {
		return nil
	}
	if err := x.idx.Delete(id); err != nil {
		return fmt.Errorf("search: delete %s: %w", id, err)
	}
	x.nmu.Lock()
	delete(x.names, id)
	x.nmu.Unlock()
	return nil
}

// rebuildBatch bounds the documents of one bleve batch.
const rebuildBatch = 1000

// Rebuild makes the index hold exactly the indexable titles of all: it
// upserts every one and deletes every indexed title not in all. Searches
// keep being answered meanwhile. When ctx ends part way, the batches
// already applied stay (the index is then a mix of old and new, as
// after that many Upserts) and a later Rebuild completes the job.
func (x *Index) Rebuild(ctx context.Context, all []fillcast.Title) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed.Load() {
		return ErrClosed
	}
	type op struct {
		id, name string
		del      bool
	}
	var ops []op
	b := x.idx.NewBatch()
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if err := x.idx.Batch(b); err != nil {
			return fmt.Errorf("search: rebuild: %w", err)
		}
		// Names follow the index batch by batch, so that every
		// indexed title has its name whenever Rebuild stops.
		x.nmu.Lock()
		for _, o := range ops {
			if o.del {
				delete(x.names, o.id)
			} else {
				x.names[o.id] = o.name
			}
		}
		x.nmu.Unlock()
		ops = ops[:0]
		// A fresh batch, not Reset: scorch may still be ranging over
		// the old one's map from a goroutine when Batch returns.
		b = x.idx.NewBatch()
		return ctx.Err()
	}
	keep := make(map[string]bool, len(all))
	for i := range all {
		t := &all[i]
		if fillcast.ValidateTitleID(t.ID) != nil || !x.indexable(t) {
			continue
		}
		keep[t.ID] = true
		if err := b.Index(t.ID, document(t)); err != nil {
			return fmt.Errorf("search: rebuild %s: %w", t.ID, err)
		}
		ops = append(ops, op{id: t.ID, name: t.Name})
		if len(ops) >= rebuildBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	var gone []string
	for id := range x.names {
		if !keep[id] {
			gone = append(gone, id)
		}
	}
	for _, id := range gone {
		b.Delete(id)
		ops = append(ops, op{id: id, del: true})
		if len(ops) >= rebuildBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Len returns the number of indexed titles.
func (x *Index) Len() int {
	x.nmu.RLock()
	defer x.nmu.RUnlock()
	return len(x.names)
}

// SetPopularity replaces the popularity scores (any non-negative scale,
// such as plays or bytes served in the last day); titles missing from
// scores count as 0. Scores are compressed with log1p so that one hit
// cannot drown relevance.
func (x *Index) SetPopularity(scores map[string]float64) {
	p := &popularity{scores: make(map[string]float64, len(scores))}
	for id, s := range scores {
		if s <= 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			continue
		}
		l := math.Log1p(s)
		p.scores[id] = l
		p.maxLog = max(p.maxLog, l)
	}
	x.pop.Store(p)
}

// Close closes the index. It is safe to call more than once.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed.Load() {
		return nil
	}
	x.closed.Store(true)
	err := x.idx.Close()
	if err != nil && !errors.Is(err, os.ErrClosed) {
		err = fmt.Errorf("search: close: %w", err)
	} else {
		err = nil
	}
	if x.scratch != "" {
		if rerr := os.RemoveAll(x.scratch); rerr != nil && err == nil {
			err = fmt.Errorf("search: close: %w", rerr)
		}
	}
	return err
}
