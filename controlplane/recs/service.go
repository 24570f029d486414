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

	"github.com/fillcast/fillcast"
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

// Source supplies the training data; *events.Log implements it.
type Source interface {
	Interactions() []events.Interaction
}

// FinishedSource lists the titles a user finished, which Recommend
// leaves out; *events.Log implements it.
type FinishedSource interface {
	Finished(user string) []string
}

var (
	_ Source         = (*events.Log)(nil)
	_ FinishedSource = (*events.Log)(nil)
)

// Config configures a Service.
type Config struct {
	// ALS configures training.
	ALS ALSConfig
	// Interval is the retraining period; the first training starts at
	// once. Zero means 1 h; negative disables the schedule (call
	// Retrain).
	Interval time.Duration
	// TrendingHalfLife is the age at which a view counts half in the
	// trending fallback. Zero means 72 h.
	TrendingHalfLife time.Duration
	// MinInteractions is the fewest (user, title) pairs worth a model;
	// below it only the fallback answers. Zero means 100.
	MinInteractions int
	// CacheEntries bounds the answers cached. Zero means 100,000.
	CacheEntries int64
	// CacheTTL bounds how long an answer is reused, and so how long a
	// title a user just finished may still be recommended. Zero means
	// 5 minutes.
	CacheTTL time.Duration
	// DefaultLimit is the number of results when none is asked for.
	// Zero means 10.
	DefaultLimit int
	// MaxLimit caps a request's limit. Zero means 100.
	MaxLimit int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ALS:              DefaultALSConfig(),
		Interval:         time.Hour,
		TrendingHalfLife: 72 * time.Hour,
		MinInteractions:  100,
		CacheEntries:     100_000,
		CacheTTL:         5 * time.Minute,
		DefaultLimit:     10,
		MaxLimit:         100,
	}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
// Zero fields mean their defaults.
func (c Config) Validate() error {
	if err := c.ALS.Validate(); err != nil {
		return fillcast.InField("ALS", err)
	}
	if c = c.withDefaults(); c.DefaultLimit > c.MaxLimit {
		return fillcast.ConfigErrorf("recs", "DefaultLimit", "%d is above MaxLimit %d", c.DefaultLimit, c.MaxLimit)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.ALS = c.ALS.withDefaults()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.TrendingHalfLife <= 0 {
		c.TrendingHalfLife = d.TrendingHalfLife
	}
	if c.MinInteractions <= 0 {
		c.MinInteractions = d.MinInteractions
	}
	if c.CacheEntries <= 0 {
		c.CacheEntries = d.CacheEntries
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = d.CacheTTL
	}
	if c.DefaultLimit <= 0 {
		c.DefaultLimit = d.DefaultLimit
	}
	if c.MaxLimit <= 0 {
		c.MaxLimit = d.MaxLimit
	}
	return c
}

// Results is the body of GET /v1/recommendations and
// GET /v1/titles/{id}/similar.
type Results struct {
	Results []Item `json:"results"`
	// Source is "als" or "popular".
	Source string `json:"source"`
}

// Stats describes the current model.
type Stats struct {
	// Generation counts the models swapped in; 0 before the first.
	Generation uint64
	// HasModel is false until ALS has trained once.
	HasModel       bool
	Users, Titles  int
	TrainedAt      time.Time
	TrainDuration  time.Duration
	LastError      string
	LastErrorAt    time.Time
	PopularEntries int
}

// snapshot is what one generation serves, swapped in whole.
type snapshot struct {
	gen     uint64
	model   *Model // nil before the first successful training
	popular *Popular
}

// Service serves recommendations and retrains in the background. Its
// methods are safe for concurrent use.
type Service struct {
	cfg    Config
	src    Source
	fin    FinishedSource
	logger *slog.Logger
	now    func() time.Time

	cur   atomic.Pointer[snapshot]
	cache *ristretto.Cache[string, *Results]

	trainMu sync.Mutex // one training at a time; guards rng and stats
	rng     *rand.Rand
	stats   Stats

	closeOnce sync.Once
}

// New returns a Service answering from the trending fallback until its
// first model; Run retrains on the schedule. New allocates the answer
// cache, whose library keeps a goroutine until Close. logger, now and
// rng may be nil (slog.Default, time.Now, a fixed seed).
func New(cfg Config, src Source, fin FinishedSource, logger *slog.Logger, now func() time.Time, rng *rand.Rand) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if src == nil || fin == nil {
		return nil, errors.New("recs: New: Source and FinishedSource required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, *Results]{
		NumCounters: 10 * cfg.CacheEntries,
		MaxCost:     cfg.CacheEntries,
		BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("recs: cache: %w", err)
	}
	s := &Service{cfg: cfg, src: src, fin: fin, logger: logger, now: now, rng: rng, cache: cache}
	s.cur.Store(&snapshot{popular: &Popular{}})
	return s, nil
}

// Run retrains at once and then every Interval until ctx is done
// (cancelling a training in progress). With a negative Interval it
// returns at once: the caller retrains.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Interval < 0 {
		return nil
	}
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if err := s.Retrain(ctx); err != nil && ctx.Err() == nil {
			s.logger.Error("recs: retrain", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Retrain trains on the source's current data and swaps the new model
// and trending list in atomically, invalidating cached answers. Requests
// meanwhile are answered by the previous model. On a training error the
// previous model stays and the trending list is still refreshed.
func (s *Service) Retrain(ctx context.Context) error {
	s.trainMu.Lock()
	defer s.trainMu.Unlock()
	start := s.now()
	data := s.src.Interactions()
	next := &snapshot{popular: NewPopular(data, start, s.cfg.TrendingHalfLife), model: s.cur.Load().model}
	var err error
	if len(data) >= s.cfg.MinInteractions {
		var m *Model
		m, err = Train(ctx, data, s.cfg.ALS, s.rng)
		if err == nil {
			next.model = m
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("recs: retrain: %w", ctx.Err())
	}
	s.swap(next)
	took := s.now().Sub(start)
	if err != nil {
		s.stats.LastError, s.stats.LastErrorAt = err.Error(), start
		return fmt.Errorf("recs: retrain: %w", err)
	}
	s.stats.TrainedAt, s.stats.TrainDuration = start, took
	if next.model != nil {
		s.logger.Info("recs: model swapped in", "generation", next.gen, "users", next.model.Users(),
			"titles", next.model.Titles(), "interactions", len(data), "took", took)
	}
	return nil
}

func (s *Service) swap(next *snapshot) {
	next.gen = s.cur.Load().gen + 1
	s.cur.Store(next)
	// Keys carry the generation, so no stale answer is read after the
	// swap; clearing frees the memory at once.
	s.cache.Clear()
}

// Stats returns the current model's figures.
func (s *Service) Stats() Stats {
	s.trainMu.Lock()
	st := s.stats
	s.trainMu.Unlock()
	snap := s.cur.Load()
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
// otherwise from the trending list.
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
		res = &Results{Results: snap.popular.Top(limit, exclude), Source: SourcePopular}
	}
	s.cache.SetWithTTL(key, res, 1, s.cfg.CacheTTL)
	return res, nil
}

// Fallback answers from the trending list alone, leaving out what the
// user finished; the API calls it when Recommend fails or times out.
func (s *Service) Fallback(user string, limit int) *Results {
	limit, err := s.limit(limit)
	if err != nil {
		limit = s.cfg.DefaultLimit
	}
	return &Results{Results: s.cur.Load().popular.Top(limit, s.excluder(user)), Source: SourcePopular}
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
	s.closeOnce.Do(func() {
		// A Retrain called directly may be swapping; let it finish.
		s.trainMu.Lock()
		defer s.trainMu.Unlock()
		s.cache.Close()
	})
	return nil
}
