package recs

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
)

// Source supplies the training data; *events.Viewing implements it.
type Source interface {
	Interactions() []events.Interaction
}

// FinishedSource lists the titles a user finished, which Recommend
// leaves out; *events.Viewing implements it.
type FinishedSource interface {
	Finished(user string) []string
}

var (
	_ Source         = (*events.Viewing)(nil)
	_ FinishedSource = (*events.Viewing)(nil)
)

// ModelStore shares trained models between the nodes (the event stream's object store).
type ModelStore interface {
	// PutModel stores a model, replacing the previous one.
	PutModel(ctx context.Context, data []byte) error
	// WatchModel calls fn with the current model, if any, and with every model put after it, until ctx ends or an error.
	WatchModel(ctx context.Context, fn func(data []byte)) error
}

// Deps are a Service's collaborators. Source and Finished are required;
// the others may be left nil.
type Deps struct {
	// Source supplies the training data and the trending list.
	Source Source
	// Finished lists what a user finished, left out of every answer.
	Finished FinishedSource
	// Catalog returns the titles ready to watch in a stable order
	// (newest first, say). It tops up a trending list shorter than the
	// answer asked for, so that a new cluster still answers with
	// titles. It is called on the request path only while trending is
	// short. Nil: no top-up.
	Catalog func() []string
	// Leader reports whether this node is the one that trains. It is
	// consulted only with Models: without a store every node trains
	// its own model. Nil: this node always trains.
	Leader func() bool
	// Models shares the leader's models with every node. Nil: each
	// node trains and serves its own.
	Models ModelStore
	// Logger receives training and model-swap messages. Nil:
	// slog.Default.
	Logger *slog.Logger
	// Now dates the data: it is the "now" of the trending decay and of
	// Stats. The schedule itself runs on the runtime's monotonic
	// timers. Nil: time.Now.
	Now func() time.Time
	// Rand seeds the initial factors of each training. Nil: a fixed
	// seed.
	Rand *rand.Rand
}

// Config configures a Service.
type Config struct {
	// ALS configures training.
	ALS ALSConfig
	// Interval is the retraining period once a model exists (the node
	// flag --recs-interval). Zero means 1 h; negative disables the
	// schedule (call Retrain).
	Interval time.Duration
	// Poll is how often Run checks, until the first model exists,
	// whether there is enough data to train, and how often a node
	// notices that it became the leader. Zero means 10 s; it is capped
	// at Interval.
	Poll time.Duration
	// TrendingHalfLife is the age at which a view counts half in the
	// trending fallback. Zero means 72 h.
	TrendingHalfLife time.Duration
	// MinInteractions is the fewest (user, title) pairs worth a model
	// (the node flag --recs-min-interactions); below it only the
	// fallback answers. Zero means 100.
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
		Poll:             10 * time.Second,
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
	if c.Poll < 0 {
		return fillcast.ConfigErrorf("recs", "Poll", "%v is negative; use 0 for the default of 10s", c.Poll)
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
	if c.Poll <= 0 {
		c.Poll = d.Poll
	}
	if c.Interval > 0 {
		c.Poll = min(c.Poll, c.Interval)
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
