// Package breaker is a circuit breaker over a rolling window of outcomes,
// in the manner of Netflix Hystrix. The control-plane gateway keeps one per
// route: when a route's endpoint keeps failing, the breaker opens and the
// gateway answers at once (503 or the route's fallback) instead of piling
// more work onto a sick dependency; after a cool-down it lets a few probe
// requests through (half-open) and closes again when they succeed.
//
// The breaker does no I/O and reads no clock: callers pass the time in, so
// tests drive it with a fake clock and the gateway reuses the timestamps it
// already takes for each request.
package breaker

import (
	"fmt"
	"sync"
	"time"
)

// State is the position of a breaker.
type State int32

// Breaker states. The numeric values are exported as the
// fillcast_api_circuit_state metric, so they must not change.
const (
	// Closed lets every request through and counts outcomes.
	Closed State = 0
	// Open refuses every request until the cool-down has passed.
	Open State = 1
	// HalfOpen lets a few probe requests through to test recovery.
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
	return fmt.Sprintf("state(%d)", int32(s))
}

// Config tunes a Breaker. The zero value of each field means the default
// given in its comment; DefaultConfig returns them filled in.
type Config struct {
	// Window is how far back outcomes count. Zero means 10 s.
	Window time.Duration
	// Buckets is how many slices the window is kept in; the window rolls
	// forward one bucket at a time. Zero means 10.
	Buckets int
	// MinRequests is how many outcomes the window must hold before the
	// error ratio may open the breaker, so that one failure out of one
	// request does not. Zero means 20.
	MinRequests int
	// ErrorRatio opens the breaker when failures/total in the window
	// reaches it (and MinRequests is met). Zero means 0.5.
	ErrorRatio float64
	// MaxFailures, when positive, opens the breaker once the window holds
	// that many failures whatever the ratio. Zero means no such limit.
	MaxFailures int
	// Cooldown is how long the breaker stays open before probing. Zero
	// means 5 s.
	Cooldown time.Duration
	// Probes is how many requests half-open lets through at once, and how
	// many must succeed to close the breaker. Zero means 1.
	Probes int
}

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{
		Window:      10 * time.Second,
		Buckets:     10,
		MinRequests: 20,
		ErrorRatio:  0.5,
		Cooldown:    5 * time.Second,
		Probes:      1,
	}
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.Buckets == 0 {
		c.Buckets = d.Buckets
	}
	if c.MinRequests == 0 {
		c.MinRequests = d.MinRequests
	}
	if c.ErrorRatio == 0 {
		c.ErrorRatio = d.ErrorRatio
	}
	if c.Cooldown == 0 {
		c.Cooldown = d.Cooldown
	}
	if c.Probes == 0 {
		c.Probes = d.Probes
	}
	return c
}

// Validate reports the first problem with c, after zero fields take their
// defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Window < 0:
		return fmt.Errorf("breaker: window %v is negative", c.Window)
	case c.Buckets < 0 || c.Buckets > 1000:
		return fmt.Errorf("breaker: buckets %d: want 1 to 1000", c.Buckets)
	case c.Window/time.Duration(c.Buckets) < time.Millisecond:
		return fmt.Errorf("breaker: window %v split into %d buckets is under 1ms a bucket", c.Window, c.Buckets)
	case c.MinRequests < 0:
		return fmt.Errorf("breaker: min requests %d is negative", c.MinRequests)
	case c.ErrorRatio < 0 || c.ErrorRatio > 1:
		return fmt.Errorf("breaker: error ratio %v: want a value in (0, 1]", c.ErrorRatio)
	case c.MaxFailures < 0:
		return fmt.Errorf("breaker: max failures %d is negative", c.MaxFailures)
	case c.Cooldown < 0:
		return fmt.Errorf("breaker: cooldown %v is negative", c.Cooldown)
	case c.Probes < 0:
		return fmt.Errorf("breaker: probes %d is negative", c.Probes)
	}
	return nil
}

// Ticket is handed out by Allow and must be given back to Done exactly
// once, with the outcome of the request it admitted. It ties the outcome
// to the breaker state it was admitted under, so a slow request admitted
// while closed cannot close a breaker that has since opened.
type Ticket struct {
	gen   uint64
	probe bool
}

// Probe reports whether the ticket admitted a half-open probe.
func (t Ticket) Probe() bool { return t.probe }

type bucket struct {
	idx      int64 // window slot number: unix nanos / bucket width
	ok, fail uint32
}

// Breaker is a circuit breaker. It is safe for concurrent use.
type Breaker struct {
	cfg      Config
	width    int64 // bucket width in nanoseconds
	onChange func(from, to State)

	mu        sync.Mutex
	state     State
	gen       uint64 // bumped on every state change
	openUntil time.Time
	probesOut int
	probesOK  int
	buckets   []bucket
}

// New returns a closed breaker. onChange, if not nil, is called on every
// state change with the breaker's lock held, in order; it must be quick
// and must not call back into the breaker.
func New(cfg Config, onChange func(from, to State)) (*Breaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Breaker{
		cfg:      cfg,
		width:    int64(cfg.Window) / int64(cfg.Buckets),
		onChange: onChange,
		buckets:  make([]bucket, cfg.Buckets),
	}, nil
}

// State returns the current state. An open breaker whose cool-down has
// passed still reports Open until a request arrives to probe.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Allow asks whether a request may go ahead at time now. When it may not,
// ok is false and retryAfter estimates when it is worth asking again (zero
// when unknown, as while probes are out).
func (b *Breaker) Allow(now time.Time) (t Ticket, retryAfter time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Closed:
		return Ticket{gen: b.gen}, 0, true
	case Open:
		if now.Before(b.openUntil) {
			return Ticket{}, b.openUntil.Sub(now), false
		}
		b.setState(HalfOpen)
	}
	if b.probesOut >= b.cfg.Probes {
		return Ticket{}, 0, false
	}
	b.probesOut++
	return Ticket{gen: b.gen, probe: true}, 0, true
}

// Done records the outcome of a request admitted by Allow.
func (b *Breaker) Done(t Ticket, success bool, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen != b.gen {
		return // admitted under an earlier state; its outcome is stale
	}
	switch b.state {
	case Closed:
		ok, fail := b.record(success, now)
		if success {
			return
		}
		total := ok + fail
		if (b.cfg.MaxFailures > 0 && fail >= b.cfg.MaxFailures) ||
			(total >= b.cfg.MinRequests && float64(fail) >= b.cfg.ErrorRatio*float64(total)) {
			b.trip(now)
		}
	case HalfOpen:
		if !success {
			b.trip(now)
			return
		}
		b.probesOK++
		if b.probesOK >= b.cfg.Probes {
			clear(b.buckets)
			b.setState(Closed)
		}
	}
}

// record adds one outcome to the bucket of now and returns the totals of
// the window ending at now. Callers may pass slightly out-of-order times
// (a request's start, or its end).
func (b *Breaker) record(success bool, now time.Time) (ok, fail int) {
	cur := now.UnixNano() / b.width
	n := int64(len(b.buckets))
	bk := &b.buckets[((cur%n)+n)%n]
	switch {
	case bk.idx < cur:
		*bk = bucket{idx: cur}
		fallthrough
	case bk.idx == cur:
		if success {
			bk.ok++
		} else {
			bk.fail++
		}
	}
	// bk.idx > cur: an outcome stamped older than the window (a request
	// that started long ago) must not wipe a newer bucket; it is dropped.
	for i := range b.buckets {
		if age := cur - b.buckets[i].idx; age >= 0 && age < n {
			ok += int(b.buckets[i].ok)
			fail += int(b.buckets[i].fail)
		}
	}
	return ok, fail
}

func (b *Breaker) trip(now time.Time) {
	b.openUntil = now.Add(b.cfg.Cooldown)
	b.setState(Open)
}

func (b *Breaker) setState(s State) {
	from := b.state
	b.state = s
	b.gen++
	b.probesOut, b.probesOK = 0, 0
	if b.onChange != nil && from != s {
		b.onChange(from, s)
	}
}
