package protect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/sony/gobreaker/v2"
)

// BreakerConfig tunes a Breaker. The zero value of each field means the
// default given in its comment; DefaultBreakerConfig returns them filled
// in.
type BreakerConfig struct {
	// Window is how far back outcomes count while the breaker is closed
	// (gobreaker's Interval). It rolls forward a tenth at a time, so a
	// burst of failures is not forgotten at once when a window ends.
	// Zero means 10 s.
	Window time.Duration
	// MinRequests is how many outcomes the window must hold before the
	// error ratio may open the breaker, so that one failure out of one
	// call does not. Zero means 20.
	MinRequests uint32
	// ErrorRatio opens the breaker when failures/outcomes in the window
	// reaches it (and MinRequests is met). Zero means 0.5.
	ErrorRatio float64
	// OpenFor is how long the breaker stays open, refusing every call,
	// before it lets probes through (gobreaker's Timeout). Zero means 5 s.
	OpenFor time.Duration
	// Probes is how many calls half-open lets through at once, and how
	// many must succeed to close the breaker; one failure opens it again
	// (gobreaker's MaxRequests). Zero means 1.
	Probes uint32
	// IsFailure says whether an error of a call counts against the
	// dependency; an error it does not count is a success (the
	// dependency answered: a 4xx, "not found"). Nil means every non-nil
	// error is a failure. Whatever it says, context.Canceled counts
	// neither way: the caller gave up, which says nothing of the
	// dependency. It is used by Do only: Allow's callers judge the
	// outcome themselves.
	IsFailure func(error) bool
}

// DefaultBreakerConfig returns the defaults described on BreakerConfig.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{
		Window:      10 * time.Second,
		MinRequests: 20,
		ErrorRatio:  0.5,
		OpenFor:     5 * time.Second,
		Probes:      1,
	}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c BreakerConfig) Validate() error {
	switch {
	case c.Window < 0:
		return fillcast.ConfigErrorf("protect", "Window", "%v is negative", c.Window)
	case c.OpenFor < 0:
		return fillcast.ConfigErrorf("protect", "OpenFor", "%v is negative", c.OpenFor)
	case math.IsNaN(c.ErrorRatio) || c.ErrorRatio < 0 || c.ErrorRatio > 1:
		return fillcast.ConfigErrorf("protect", "ErrorRatio", "%v: want a ratio above 0 and at most 1 (0 for the default, 0.5)", c.ErrorRatio)
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c BreakerConfig) withDefaults() BreakerConfig {
	d := DefaultBreakerConfig()
	c.Window = cmp.Or(c.Window, d.Window)
	c.MinRequests = cmp.Or(c.MinRequests, d.MinRequests)
	c.ErrorRatio = cmp.Or(c.ErrorRatio, d.ErrorRatio)
	c.OpenFor = cmp.Or(c.OpenFor, d.OpenFor)
	c.Probes = cmp.Or(c.Probes, d.Probes)
	if c.IsFailure == nil {
		c.IsFailure = func(err error) bool { return err != nil }
	}
	return c
}

// windowBuckets is how many slices the closed state's window rolls in.
const windowBuckets = 10

// State is the position of a Breaker.
type State int

// Breaker states. The numbers are exported as the fillcast_breaker_state
// metric, so they must not change (they are not gobreaker's).
const (
	// Closed lets every call through and counts outcomes.
	Closed State = 0
	// Open refuses every call until OpenFor has passed.
	Open State = 1
	// HalfOpen lets Probes calls through to test recovery.
	HalfOpen State = 2
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// fromGobreaker maps gobreaker's states, numbered otherwise, to ours.
func fromGobreaker(s gobreaker.State) State {
	switch s {
	case gobreaker.StateOpen:
		return Open
	case gobreaker.StateHalfOpen:
		return HalfOpen
	}
	return Closed
}

// ErrOpen is wrapped by the *OpenError of a call a Breaker refused.
var ErrOpen = errors.New("protect: circuit open")

// OpenError is a call a Breaker refused: its dependency has been failing.
// It unwraps to ErrOpen.
type OpenError struct {
	// Name is the breaker's, which names the dependency.
	Name string
	// RetryAfter is how long until the breaker lets a probe through, at
	// least 1 s: what a Retry-After header should say.
	RetryAfter time.Duration
}

// Error names the dependency and when to try again.
func (e *OpenError) Error() string {
	return fmt.Sprintf("protect: circuit open for %s: retry in %v", e.Name, e.RetryAfter)
}

// Unwrap returns ErrOpen.
func (e *OpenError) Unwrap() error { return ErrOpen }

// Outcomes handed to gobreaker's done callback: errFailed counts as a
// failure; errExcluded counts neither way.
var (
	errFailed   = errors.New("protect: call failed")
	errExcluded = errors.New("protect: call excluded")
)

// minRetryAfter is the least RetryAfter a refusal says: a Retry-After
// header is in whole seconds, and 0 would invite an immediate retry.
const minRetryAfter = time.Second

// Breaker is a circuit breaker for one dependency (one route, one
// upstream); see the package doc. It is safe for concurrent use.
type Breaker struct {
	name      string
	openFor   time.Duration
	isFailure func(error) bool
	cb        *gobreaker.TwoStepCircuitBreaker[struct{}]
	m         *Metrics
	log       *slog.Logger

	// mu guards openedAt, when the breaker last opened. It is taken
	// inside gobreaker's lock (OnStateChange), never around a call into
	// gobreaker.
	mu       sync.Mutex
	openedAt time.Time
}

// NewBreaker returns a closed Breaker named name (the dependency, and
// the "breaker" label of its metrics), counting in m and logging state
// changes to log at Warn; m and log may be nil. It does no I/O.
func NewBreaker(name string, cfg BreakerConfig, m *Metrics, log *slog.Logger) (*Breaker, error) {
	if name == "" {
		return nil, errors.New("protect: a breaker needs a name: the dependency it guards")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Breaker{name: name, openFor: cfg.OpenFor, isFailure: cfg.IsFailure, m: m, log: log}
	minRequests, ratio := cfg.MinRequests, cfg.ErrorRatio
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         name,
		MaxRequests:  cfg.Probes,
		Interval:     cfg.Window,
		BucketPeriod: cfg.Window / windowBuckets,
		Timeout:      cfg.OpenFor,
		// Counts.Requests also counts calls under way; the ratio is of
		// outcomes, so that slow calls do not dilute it.
		ReadyToTrip: func(c gobreaker.Counts) bool {
			n := c.TotalSuccesses + c.TotalFailures
			return n >= minRequests && float64(c.TotalFailures) >= ratio*float64(n)
		},
		OnStateChange: b.changed,
		IsExcluded:    func(err error) bool { return errors.Is(err, errExcluded) },
	})
	m.breaker(name, Closed)
	return b, nil
}

// changed is gobreaker's OnStateChange, called under its lock: it must
// not call back into b.cb.
func (b *Breaker) changed(_ string, from, to gobreaker.State) {
	if to == gobreaker.StateOpen {
		now := time.Now()
		b.mu.Lock()
		b.openedAt = now
		b.mu.Unlock()
	}
	s := fromGobreaker(to)
	b.m.transition(b.name, s)
	b.log.Warn("protect: circuit breaker changed state", "breaker", b.name, "from", fromGobreaker(from).String(), "to", s.String())
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State returns the breaker's state now. An open breaker whose OpenFor
// has passed turns half-open when it is next asked, by State or a call;
// until then its gauge still says open.
func (b *Breaker) State() State { return fromGobreaker(b.cb.State()) }

// Allow asks to make one call. When ok is false the breaker is open, or
// half-open with its probes all under way: do not call, and tell the
// caller to come back after retryAfter, how long until the breaker will
// probe (at least 1 s). When ok is true, make the call and then report
// its outcome with done(success), exactly once; later calls of done do
// nothing. A call whose outcome is never reported holds a half-open
// breaker's probe slot until the breaker changes state.
func (b *Breaker) Allow() (done func(success bool), retryAfter time.Duration, ok bool) {
	report, retryAfter, ok := b.allow()
	if !ok {
		return nil, retryAfter, false
	}
	return func(success bool) {
		if success {
			report(nil)
		} else {
			report(errFailed)
		}
	}, 0, true
}

// allow is Allow with done taking gobreaker's outcome (nil, errFailed or
// errExcluded), reported at most once.
func (b *Breaker) allow() (done func(error), retryAfter time.Duration, ok bool) {
	report, err := b.cb.Allow()
	if err != nil {
		b.m.reject(b.name)
		return nil, b.retryAfter(), false
	}
	var once atomic.Bool
	return func(outcome error) {
		if once.CompareAndSwap(false, true) {
			report(outcome)
		}
	}, 0, true
}

// retryAfter is how long until an open breaker probes, at least
// minRetryAfter (also what a full half-open breaker says).
func (b *Breaker) retryAfter() time.Duration {
	b.mu.Lock()
	at := b.openedAt
	b.mu.Unlock()
	return max(time.Until(at.Add(b.openFor)), minRetryAfter)
}

// Do runs fn under the breaker. When the breaker refuses, fn does not run
// and Do returns an *OpenError (errors.Is ErrOpen). Otherwise it returns
// fn's error as it is, and counts it as the breaker's IsFailure says. A
// panic in fn counts as a failure and goes on up. A ctx already done is
// returned as it is, without asking the breaker.
func (b *Breaker) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("protect: %s: %w", b.name, err)
	}
	done, retryAfter, ok := b.allow()
	if !ok {
		return &OpenError{Name: b.name, RetryAfter: retryAfter}
	}
	defer done(errFailed) // a panic; after done below it does nothing
	err := fn(ctx)
	done(b.outcome(err))
	return err
}

// outcome classifies a call's error for gobreaker.
func (b *Breaker) outcome(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return errExcluded
	case b.isFailure(err):
		return errFailed
	}
	return nil
}

// Call runs fn under b, as Do does, and returns fn's value.
func Call[T any](ctx context.Context, b *Breaker, fn func(ctx context.Context) (T, error)) (T, error) {
	var v T
	err := b.Do(ctx, func(ctx context.Context) (err error) {
		v, err = fn(ctx)
		return err
	})
	return v, err
}
