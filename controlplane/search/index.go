package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"

	"github.com/fillcast/fillcast"
)

// Index is the catalog's search index. Its methods are safe for
// concurrent use.
type Index struct {
	cfg    Config
	logger *slog.Logger
	idx    bleve.Index
	an     analyzers

	mu      sync.Mutex  // serialises writes and Close
	closed  atomic.Bool // set under mu, read without it
	scratch string      // the temporary directory of an in-memory index

	nmu   sync.RWMutex // guards names, the id → name table of results
	names map[string]string

	pop atomic.Pointer[popularity]
	voc atomic.Pointer[vocab] // words for typo tolerance
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
	cfg = cfg.withDefaults()
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
	rt := map[string]any{"unsafe_batch": scratch != "", "scorchMergePlanOptions": mergePlan,
		"scorchPersisterOptions": persisterOptions}
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
	x.pop.Store(&popularity{})
	x.voc.Store(newVocab())
	if x.an, err = newAnalyzers(idx.Mapping()); err == nil && cfg.Path != "" {
		if err = x.loadNames(); err == nil {
			err = x.loadVocab(x.voc.Load())
		}
	}
	if err != nil {
		x.Close()
		return nil, err
	}
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
	doc, err := x.titleDoc(&t)
	if err == nil {
		b := x.idx.NewBatch()
		err = b.IndexAdvanced(doc)
		if err == nil {
			err = x.idx.Batch(b)
		}
	}
	if err != nil {
		x.nmu.Lock()
		if had {
			x.names[t.ID] = old
		} else {
			delete(x.names, t.ID)
		}
		x.nmu.Unlock()
		return fmt.Errorf("search: upsert %s: %w", t.ID, err)
	}
	x.learn(x.voc.Load(), &t)
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
	// A fresh vocabulary drops the words of titles gone since the last
	// Rebuild; searches use the old one until this one is complete.
	voc, done := newVocab(), false
	defer func() {
		if done {
			x.voc.Store(voc)
		} else {
			x.voc.Load().merge(voc)
		}
	}()
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
		doc, err := x.titleDoc(t)
		if err != nil {
			return err
		}
		if err := b.IndexAdvanced(doc); err != nil {
			return fmt.Errorf("search: rebuild %s: %w", t.ID, err)
		}
		x.learn(voc, t)
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
	if err := flush(); err != nil {
		return err
	}
	done = true
	x.compact(ctx)
	return nil
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
