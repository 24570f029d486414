package protect

import (
	"cmp"
	"math"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/prometheus/client_golang/prometheus"
)

// BudgetConfig tunes a Budget. The zero value of each field means the
// default given in its comment; DefaultBudgetConfig returns them filled
// in.
type BudgetConfig struct {
	// Ratio is the share of first attempts that may be retried over the
	// Window: 0.1 lets 100 calls make 10 retries. Zero means 0.1.
	Ratio float64
	// MinPerSecond is the floor that lets a quiet caller retry at all:
	// MinPerSecond×Window retries a window on top of the Ratio. Zero
	// means 3.
	MinPerSecond float64
	// Window is how far back first attempts and retries count; it rolls
	// forward a tenth at a time. Zero means 10 s.
	Window time.Duration
}

// DefaultBudgetConfig returns the defaults described on BudgetConfig.
func DefaultBudgetConfig() BudgetConfig {
	return BudgetConfig{Ratio: 0.1, MinPerSecond: 3, Window: 10 * time.Second}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c BudgetConfig) Validate() error {
	switch {
	case math.IsNaN(c.Ratio) || c.Ratio < 0 || c.Ratio > 1:
		return fillcast.ConfigErrorf("protect", "Ratio", "%v: want a share of first attempts above 0 and at most 1 (0 for the default, 0.1)", c.Ratio)
	case math.IsNaN(c.MinPerSecond) || math.IsInf(c.MinPerSecond, 0) || c.MinPerSecond < 0:
		return fillcast.ConfigErrorf("protect", "MinPerSecond", "%v: want a number of retries a second, 0 for the default (3)", c.MinPerSecond)
	case c.Window < 0:
		return fillcast.ConfigErrorf("protect", "Window", "%v is negative", c.Window)
	case c.Window > 0 && c.Window < budgetSlots*time.Millisecond:
		return fillcast.ConfigErrorf("protect", "Window", "%v is too short to count in: want %v or more", c.Window, budgetSlots*time.Millisecond)
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c BudgetConfig) withDefaults() BudgetConfig {
	d := DefaultBudgetConfig()
	c.Ratio = cmp.Or(c.Ratio, d.Ratio)
	c.MinPerSecond = cmp.Or(c.MinPerSecond, d.MinPerSecond)
	c.Window = cmp.Or(c.Window, d.Window)
	return c
}

// budgetSlots is how many slices a Budget's window rolls in.
const budgetSlots = 10

// budgetSlot is what one slice of the window counted.
type budgetSlot struct{ requests, retries int64 }

// Budget caps the retries of calls to one dependency at
// Ratio×(first attempts) + MinPerSecond×Window over any rolling Window,
// so that retries add a bounded share to a failing dependency's load
// however many callers retry. Callers report each first attempt with
// Request and ask Withdraw before each retry; Retry does both. It is
// safe for concurrent use.
type Budget struct {
	ratio   float64
	reserve float64 // the floor's retries a window
	slot    time.Duration
	now     func() time.Time
	start   time.Time // slot numbers count from here
	made    prometheus.Counter
	refused prometheus.Counter

	mu    sync.Mutex
	head  int64 // the number of the newest slot
	slots [budgetSlots]budgetSlot
	sum   budgetSlot // of every slot
}

// BudgetOption is an optional part of a Budget.
type BudgetOption func(*Budget)

// WithBudgetMetrics counts the budget's retries made and refused in m,
// under the "budget" label name.
func WithBudgetMetrics(name string, m *Metrics) BudgetOption {
	return func(b *Budget) { b.made, b.refused = m.retryCounters(name) }
}

// NewBudget returns a Budget with nothing spent. It does no I/O.
func NewBudget(cfg BudgetConfig, opts ...BudgetOption) (*Budget, error) {
	return newBudget(cfg, time.Now, opts...)
}

// newBudget is NewBudget on the clock now.
func newBudget(cfg BudgetConfig, now func() time.Time, opts ...BudgetOption) (*Budget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Budget{
		ratio:   cfg.Ratio,
		reserve: cfg.MinPerSecond * cfg.Window.Seconds(),
		slot:    cfg.Window / budgetSlots,
		now:     now,
		start:   now(),
	}
	for _, o := range opts {
		o(b)
	}
	return b, nil
}

// Request records a first attempt, which earns Ratio of a retry.
func (b *Budget) Request() {
	b.mu.Lock()
	s := b.advance()
	s.requests++
	b.sum.requests++
	b.mu.Unlock()
}

// Withdraw reports whether one retry may be made now, and takes it from
// the budget if so.
func (b *Budget) Withdraw() bool {
	b.mu.Lock()
	s := b.advance()
	ok := b.ratio*float64(b.sum.requests)+b.reserve-float64(b.sum.retries) >= 1
	if ok {
		s.retries++
		b.sum.retries++
	}
	b.mu.Unlock()
	if !ok && b.refused != nil {
		b.refused.Inc()
	}
	return ok
}

// retried counts a retry made, once its wait is over.
func (b *Budget) retried() {
	if b != nil && b.made != nil {
		b.made.Inc()
	}
}

// advance rolls the window forward to now, forgetting the slots that
// fell out of it, and returns the newest slot. b.mu is held.
func (b *Budget) advance() *budgetSlot {
	n := int64(b.now().Sub(b.start) / b.slot)
	if n > b.head {
		if n-b.head >= budgetSlots {
			b.slots, b.sum = [budgetSlots]budgetSlot{}, budgetSlot{}
		} else {
			for i := b.head + 1; i <= n; i++ {
				s := &b.slots[i%budgetSlots]
				b.sum.requests -= s.requests
				b.sum.retries -= s.retries
				*s = budgetSlot{}
			}
		}
		b.head = n
	}
	return &b.slots[b.head%budgetSlots]
}
