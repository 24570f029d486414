package recs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/fillcast/fillcast/controlplane/events"
)

// Errors the API maps to status codes.
var (
	// ErrBadRequest: a missing user or title, or a bad limit (400).
	ErrBadRequest = errors.New("recs: bad request")
	// ErrNotReady: no model has been trained yet, so there are no
	// similar titles (503; retry later).
	ErrNotReady = errors.New("recs: no model trained yet")
	// ErrUnknownTitle: the model has never seen the title (404).
	ErrUnknownTitle = errors.New("recs: title unknown to the model")
)

// Sources of a Results.
const (
	SourceALS     = "als"
	SourcePopular = "popular"
)

// Results is the body of GET /v1/recommendations and
// GET /v1/titles/{id}/similar.
type Results struct {
	Results []Item `json:"results"`
	// Source is "als" or "popular".
	Source string `json:"source"`
}

// Stats describes the current model and this node's part in making it.
type Stats struct {
	// Generation counts the snapshots (model and trending list) swapped
	// in; 0 before the first.
	Generation uint64
	// HasModel is false until a model has been trained here or
	// received from the ModelStore.
	HasModel      bool
	Users, Titles int
	// TrainedAt and TrainDuration describe this node's last training.
	TrainedAt     time.Time
	TrainDuration time.Duration
	// Trainings counts the models this node trained.
	Trainings uint64
	// Received counts the models swapped in from the ModelStore.
	Received uint64
	// LastError is the last failure to train, share or decode a model.
	LastError      string
	LastErrorAt    time.Time
	PopularEntries int
}

// snapshot is what one generation serves, swapped in whole.
type snapshot struct {
	gen     uint64
	model   *Model // nil before the first model
	popular *Popular
}

// Service serves recommendations, keeps its trending list fresh and
// trains or receives models in the background. Its methods are safe for
// concurrent use.
type Service struct {
	cfg     Config
	src     Source
	fin     FinishedSource
	catalog func() []string
	leader  func() bool
	models  ModelStore
	logger  *slog.Logger
	now     func() time.Time

	cur   atomic.Pointer[snapshot]
	cache *ristretto.Cache[string, *Results]

	trainMu sync.Mutex // one training at a time; guards rng
	rng     *rand.Rand

	mu    sync.Mutex // serialises swaps; guards what follows
	stats Stats
	// lastModel is when (monotonic) this node last swapped in or put a
	// model; zero before the first. The schedule counts Interval
	// from it.
	lastModel time.Time
	closed    bool
}

// New returns a Service answering from the trending list (topped up
// from the catalog) until its first model; Run keeps it up to date. New
// does no I/O and starts nothing but the answer cache, whose library
// keeps a goroutine until Close.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if deps.Source == nil || deps.Finished == nil {
		return nil, errors.New("recs: New: Deps.Source and Deps.Finished required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.New(rand.NewPCG(1, 2))
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, *Results]{
		NumCounters: 10 * cfg.CacheEntries,
		MaxCost:     cfg.CacheEntries,
		BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("recs: cache: %w", err)
	}
	s := &Service{
		cfg: cfg, src: deps.Source, fin: deps.Finished, catalog: deps.Catalog,
		leader: deps.Leader, models: deps.Models,
		logger: deps.Logger, now: deps.Now, rng: deps.Rand, cache: cache,
	}
	s.cur.Store(&snapshot{popular: &Popular{}})
	return s, nil
}

// Stats returns the current model's figures.
func (s *Service) Stats() Stats {
	s.mu.Lock() // swaps hold it too, so the figures match the snapshot
	st := s.stats
	snap := s.cur.Load()
	s.mu.Unlock()
	st.Generation = snap.gen
	st.PopularEntries = len(snap.popular.ranked)
	if snap.model != nil {
		st.HasModel, st.Users, st.Titles = true, snap.model.Users(), snap.model.Titles()
	}
	return st
}

// PopularityScores returns the trending score of every title, for
// search.Index.SetPopularity.
func (s *Service) PopularityScores() map[string]float64 {
	return s.cur.Load().popular.Scores()
}

func (s *Service) limit(n int) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("%w: limit must not be negative", ErrBadRequest)
	case n == 0:
		return s.cfg.DefaultLimit, nil
	}
	return min(n, s.cfg.MaxLimit), nil
}

func cacheKey(gen uint64, kind byte, limit int, id string) string {
	b := make([]byte, 0, 32+len(id))
	b = strconv.AppendUint(b, gen, 10)
	b = append(b, 0, kind, 0)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, 0)
	return string(append(b, id...))
}

// Recommend returns up to limit titles for user, best first, leaving out
// titles the user finished: from the model when it knows the user,
// otherwise from the trending list topped up from the catalog.
func (s *Service) Recommend(ctx context.Context, user string, limit int) (*Results, error) {
	if user == "" || len(user) > events.MaxUserLen {
		return nil, fmt.Errorf("%w: user must be 1 to %d bytes", ErrBadRequest, events.MaxUserLen)
	}
	limit, err := s.limit(limit)
	if err != nil {
		return nil, err
	}
	snap := s.cur.Load()
	key := cacheKey(snap.gen, 'r', limit, user)
	if r, ok := s.cache.Get(key); ok {
		return r, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("recs: recommend: %w", err)
	}
	exclude := s.excluder(user)
	res := &Results{Source: SourceALS}
	if snap.model != nil {
		res.Results, _ = snap.model.Recommend(user, limit, exclude)
	}
	if len(res.Results) == 0 {
		res = &Results{Results: s.popularTop(snap.popular, limit, exclude), Source: SourcePopular}
	}
	s.cache.SetWithTTL(key, res, 1, s.cfg.CacheTTL)
	return res, nil
}

// Fallback answers from the trending list alone, topped up from the
// catalog when trending is short, leaving out what the user finished;
// the API calls it when Recommend fails or times out.
func (s *Service) Fallback(user string, limit int) *Results {
	limit, err := s.limit(limit)
	if err != nil {
		limit = s.cfg.DefaultLimit
	}
	return &Results{Results: s.popularTop(s.cur.Load().popular, limit, s.excluder(user)), Source: SourcePopular}
}

// popularTop is p's limit best titles that exclude does not report,
// topped up from the catalog when trending has fewer.
func (s *Service) popularTop(p *Popular, limit int, exclude func(string) bool) []Item {
	items := p.Top(limit, exclude)
	if len(items) >= limit || s.catalog == nil {
		return items
	}
	return topUp(items, s.catalog(), limit, exclude)
}

func (s *Service) excluder(user string) func(string) bool {
	if user == "" {
		return nil
	}
	done := s.fin.Finished(user)
	if len(done) == 0 {
		return nil
	}
	set := make(map[string]struct{}, len(done))
	for _, t := range done {
		set[t] = struct{}{}
	}
	return func(t string) bool { _, ok := set[t]; return ok }
}

// Similar returns up to limit titles whose learned factors are closest to
// title's. It fails with ErrNotReady before the first model and
// ErrUnknownTitle for a title nobody watched at training time.
func (s *Service) Similar(ctx context.Context, title string, limit int) (*Results, error) {
	if title == "" {
		return nil, fmt.Errorf("%w: title required", ErrBadRequest)
	}
	limit, err := s.limit(limit)
	if err != nil {
		return nil, err
	}
	snap := s.cur.Load()
	if snap.model == nil {
		return nil, ErrNotReady
	}
	key := cacheKey(snap.gen, 's', limit, title)
	if r, ok := s.cache.Get(key); ok {
		return r, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("recs: similar: %w", err)
	}
	items, ok := snap.model.Similar(title, limit)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTitle, title)
	}
	res := &Results{Results: items, Source: SourceALS}
	s.cache.SetWithTTL(key, res, 1, s.cfg.CacheTTL)
	return res, nil
}

// Close releases the cache, once Run has returned. It is safe to call
// more than once; requests after Close are still answered, uncached.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.cache.Close()
	}
	return nil
}
