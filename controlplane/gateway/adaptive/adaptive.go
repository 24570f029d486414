// Package adaptive finds how many requests a node should work on at once
// from how long they take, so that the control plane's gateway can refuse
// the excess instead of queueing it until everything times out. It is the
// gateway's node-wide concurrency limit; the gateway sheds by priority
// against it (see gateway.Priority).
//
// The algorithm is Gradient2 from Netflix's concurrency-limits library
// (com.netflix.concurrency.limits.limit.Gradient2Limit, described in
// "Performance Under Load", Netflix Technology Blog, 2018), fed by windows
// of samples as that library's WindowedLimit feeds it. Each window of at
// least Config.Window and Config.MinSamples requests yields the short RTT,
// the window's mean latency. The long RTT is an exponential average of the
// short ones over Config.LongWindow windows (a plain mean of the first
// ten), and it is cut by 10 % whenever it is more than twice the short
// RTT, so that after a long overload it comes back down to the new floor
// quickly instead of decaying for minutes. Then
//
//	gradient = clamp(Tolerance × long / short, 0.5, 1)
//	target   = limit × gradient + √limit
//	limit    = limit × (1 − Smoothing) + target × Smoothing, within [MinLimit, MaxLimit]
//
// While latency stays near its floor the gradient is 1 and the limit grows
// by Smoothing×√limit a window; when requests start queueing, latency rises
// above Tolerance times the long RTT and the limit shrinks, by at most
// about 10 % a window. A window in which fewer than half the limit were in
// flight says nothing about capacity and leaves the limit alone (the
// application, not the limit, bounded concurrency), as in Gradient2.
//
// Two additions to the published Gradient2. A request dropped by a timeout
// has no latency worth averaging (it is the timeout), so it is left out of
// the short RTT and the window it ends in is read as the strongest sign of
// queueing, gradient 0.5, as Netflix's Vegas and AIMD limits lower the
// limit on any drop. And a window's mean below Config.MinRTT counts as
// MinRTT, so that microsecond jitter of very fast endpoints is not read as
// queueing (WindowedLimit drops such samples instead, which would freeze
// the limit of a node whose endpoints all answer in microseconds).
//
// A Limiter reads no clock and starts no goroutine: the caller passes the
// time with each sample, so tests drive it deterministically.
package adaptive

import (
	"cmp"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
)

// Config tunes a Limiter. The zero value of each field means the default
// given in its comment; DefaultConfig returns them filled in.
type Config struct {
	// InitialLimit is the limit before any window has been measured.
	// Zero means 20.
	InitialLimit int
	// MinLimit is the least the limit falls to, however slow requests
	// get, so that a node under a latency spike keeps serving some. Zero
	// means 8.
	MinLimit int
	// MaxLimit bounds the limit from above, a failsafe. Zero means 1000.
	MaxLimit int
	// Tolerance is how many times the long RTT the short RTT may reach
	// before the limit shrinks; at least 1. Zero means 1.5.
	Tolerance float64
	// Smoothing is the weight of each window's target in the new limit,
	// in (0, 1]: lower moves the limit more slowly. Zero means 0.2.
	Smoothing float64
	// LongWindow is how many windows the long RTT averages over. Zero
	// means 600 (ten minutes of one-second windows).
	LongWindow int
	// Window is the least time a window of samples spans. Zero means 1 s.
	Window time.Duration
	// MinSamples is how many samples a window needs to count; a quieter
	// window is thrown away. Zero means 10.
	MinSamples int
	// MinRTT is the least a window's mean latency counts as. Zero means
	// 100 µs.
	MinRTT time.Duration
}

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{
		InitialLimit: 20,
		MinLimit:     8,
		MaxLimit:     1000,
		Tolerance:    1.5,
		Smoothing:    0.2,
		LongWindow:   600,
		Window:       time.Second,
		MinSamples:   10,
		MinRTT:       100 * time.Microsecond,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.InitialLimit = cmp.Or(c.InitialLimit, d.InitialLimit)
	c.MinLimit = cmp.Or(c.MinLimit, d.MinLimit)
	c.MaxLimit = cmp.Or(c.MaxLimit, d.MaxLimit)
	c.Tolerance = cmp.Or(c.Tolerance, d.Tolerance)
	c.Smoothing = cmp.Or(c.Smoothing, d.Smoothing)
	c.LongWindow = cmp.Or(c.LongWindow, d.LongWindow)
	c.Window = cmp.Or(c.Window, d.Window)
	c.MinSamples = cmp.Or(c.MinSamples, d.MinSamples)
	c.MinRTT = cmp.Or(c.MinRTT, d.MinRTT)
	return c
}

// Validate reports the first problem with c, after zero fields take their
// defaults, as a *fillcast.ConfigError.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(field, format string, args ...any) error {
		return fillcast.ConfigErrorf("adaptive", field, format, args...)
	}
	switch {
	case c.MinLimit < 1:
		return bad("MinLimit", "%d: want at least 1", c.MinLimit)
	case c.MaxLimit < c.MinLimit:
		return bad("MaxLimit", "%d is below MinLimit %d", c.MaxLimit, c.MinLimit)
	case c.InitialLimit < c.MinLimit || c.InitialLimit > c.MaxLimit:
		return bad("InitialLimit", "%d: want a value from MinLimit %d to MaxLimit %d", c.InitialLimit, c.MinLimit, c.MaxLimit)
	case math.IsNaN(c.Tolerance) || c.Tolerance < 1:
		return bad("Tolerance", "%v: want at least 1 (1.5 lets latency grow by half before the limit shrinks)", c.Tolerance)
	case math.IsNaN(c.Smoothing) || c.Smoothing < 0 || c.Smoothing > 1:
		return bad("Smoothing", "%v: want a value above 0 and at most 1", c.Smoothing)
	case c.LongWindow < 1:
		return bad("LongWindow", "%d: want at least 1 window", c.LongWindow)
	case c.Window < 0:
		return bad("Window", "%v is negative", c.Window)
	case c.MinSamples < 1:
		return bad("MinSamples", "%d: want at least 1", c.MinSamples)
	case c.MinRTT < 0:
		return bad("MinRTT", "%v is negative", c.MinRTT)
	}
	return nil
}

// warmup is how many windows the long RTT is a plain mean of before it
// becomes an exponential average, as in Gradient2.
const warmup = 10

// Limiter is a node-wide concurrency limit: callers Acquire a slot before
// the work and give it back with Done (with the work's latency) or
// Release (without). It is safe for concurrent use; Acquire and Release
// take no lock.
type Limiter struct {
	cfg      Config
	fixed    bool
	limit    atomic.Int64
	inFlight atomic.Int64

	mu       sync.Mutex
	estimate float64 // the limit before rounding down
	short    float64 // nanoseconds
	long     float64 // nanoseconds
	windows  int     // measured so far, up to warmup
	win      window
}

// window accumulates the samples of one sampling window.
type window struct {
	start       time.Time
	samples     int           // every sample, drops included
	sum         time.Duration // of the n samples that were not drops
	n           int
	maxInFlight int64
	dropped     bool
}

// Token is the receipt for a slot taken by Acquire; hand it back to Done
// or Release exactly once.
type Token struct {
	inFlight int64 // including this one, when it was admitted
}

// New returns an adaptive Limiter at cfg's initial limit.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Limiter{cfg: cfg.withDefaults()}
	l.estimate = float64(l.cfg.InitialLimit)
	l.limit.Store(int64(l.cfg.InitialLimit))
	return l, nil
}

// NewFixed returns a Limiter whose limit stays at limit whatever the
// latency: for operators who measured their node's capacity.
func NewFixed(limit int) (*Limiter, error) {
	if limit < 1 {
		return nil, errors.New("adaptive: a fixed limit must be at least 1")
	}
	l := &Limiter{fixed: true}
	l.estimate = float64(limit)
	l.limit.Store(int64(limit))
	return l, nil
}

// Acquire takes a slot if fewer than share × the limit (rounded down, but
// at least 1) are in flight; share is in (0, 1], 1 for the whole limit.
// Callers of lower priority pass a smaller share so that they are refused
// first.
func (l *Limiter) Acquire(share float64) (Token, bool) {
	most := l.limit.Load()
	if share < 1 {
		most = max(int64(share*float64(most)), 1)
	}
	for {
		n := l.inFlight.Load()
		if n >= most {
			return Token{}, false
		}
		if l.inFlight.CompareAndSwap(n, n+1) {
			return Token{inFlight: n + 1}, true
		}
	}
}

// Release gives t's slot back without a sample: the work was refused or
// failed for a reason that says nothing of the node's load.
func (l *Limiter) Release(t Token) { l.inFlight.Add(-1) }

// Done gives t's slot back and records the work's latency rtt, finished
// at now; dropped says it timed out instead (its rtt is then ignored and
// its window lowers the limit). A window closes at the first sample at
// least Config.Window after its first, and the limit moves then.
func (l *Limiter) Done(t Token, now time.Time, rtt time.Duration, dropped bool) {
	l.inFlight.Add(-1)
	if l.fixed {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &l.win
	if w.samples == 0 {
		w.start = now
	}
	w.samples++
	if dropped {
		w.dropped = true
	} else {
		w.sum += rtt
		w.n++
	}
	w.maxInFlight = max(w.maxInFlight, t.inFlight)
	if now.Sub(w.start) < l.cfg.Window {
		return
	}
	if w.samples >= l.cfg.MinSamples {
		l.update(*w)
	}
	l.win = window{}
}

// update is one step of Gradient2 at the end of window w; l.mu is held.
func (l *Limiter) update(w window) {
	if w.n > 0 {
		short := max(float64(w.sum)/float64(w.n), float64(l.cfg.MinRTT))
		l.short = short
		if l.windows < warmup {
			l.windows++
			l.long += (short - l.long) / float64(l.windows)
		} else {
			f := 2 / float64(l.cfg.LongWindow+1)
			l.long = l.long*(1-f) + short*f
		}
		if l.long > 2*short {
			l.long *= 0.9
		}
	}
	est := l.estimate
	var gradient float64
	switch {
	case w.dropped:
		gradient = 0.5
	case w.n == 0 || float64(w.maxInFlight) < est/2:
		return
	default:
		gradient = min(max(l.cfg.Tolerance*l.long/l.short, 0.5), 1)
	}
	target := est*gradient + math.Sqrt(est)
	est = est*(1-l.cfg.Smoothing) + target*l.cfg.Smoothing
	est = min(max(est, float64(l.cfg.MinLimit)), float64(l.cfg.MaxLimit))
	l.estimate = est
	l.limit.Store(int64(est))
}

// Limit returns the current limit.
func (l *Limiter) Limit() int { return int(l.limit.Load()) }

// InFlight returns how many slots are taken.
func (l *Limiter) InFlight() int { return int(l.inFlight.Load()) }

// State is a Limiter's state, for metrics and logs.
type State struct {
	// Limit is the current limit, and InFlight the slots taken.
	Limit, InFlight int
	// ShortRTT is the last window's mean latency, and LongRTT the
	// long-term average; both are zero until a window was measured, and
	// always for a fixed limit.
	ShortRTT, LongRTT time.Duration
}

// State returns the limiter's state now.
func (l *Limiter) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return State{Limit: l.Limit(), InFlight: l.InFlight(), ShortRTT: time.Duration(l.short), LongRTT: time.Duration(l.long)}
}
