package protect

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
	"github.com/prometheus/client_golang/prometheus"
)

func TestBreakerConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   BreakerConfig
		field string // "" for no error
	}{
		{"zero is the defaults", BreakerConfig{}, ""},
		{"defaults", DefaultBreakerConfig(), ""},
		{"ratio 1", BreakerConfig{ErrorRatio: 1}, ""},
		{"negative window", BreakerConfig{Window: -time.Second}, "Window"},
		{"negative open for", BreakerConfig{OpenFor: -time.Second}, "OpenFor"},
		{"ratio over 1", BreakerConfig{ErrorRatio: 1.5}, "ErrorRatio"},
		{"negative ratio", BreakerConfig{ErrorRatio: -0.1}, "ErrorRatio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantConfigError(t, tt.cfg.Validate(), tt.field)
		})
	}
	if _, err := NewBreaker("", BreakerConfig{}, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "protect: ") {
		t.Errorf("NewBreaker without a name: %v, want a protect: error", err)
	}
	if _, err := NewBreaker("x", BreakerConfig{ErrorRatio: 2}, nil, nil); err == nil {
		t.Error("NewBreaker with a bad config: nil error")
	}
}

func TestStateNumbersAndNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    State
		num  int
		name string
	}{
		{Closed, 0, "closed"},
		{Open, 1, "open"},
		{HalfOpen, 2, "half-open"},
		{State(7), 7, "state(7)"},
	}
	for _, tt := range tests {
		if got := int(tt.s); got != tt.num {
			t.Errorf("%v = %d, want %d (the metric's value)", tt.s, got, tt.num)
		}
		if got := tt.s.String(); got != tt.name {
			t.Errorf("State(%d).String() = %q, want %q", tt.num, got, tt.name)
		}
	}
}

// TestBreakerTripsOnRatio: the breaker opens when failures reach
// ErrorRatio of MinRequests outcomes or more, and not before.
func TestBreakerTripsOnRatio(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fails []bool
		want  State
	}{
		{"under MinRequests, all failed", repeat(9, true), Closed},
		{"at MinRequests, half failed", append(repeat(5, false), repeat(5, true)...), Open},
		{"at MinRequests, 4 of 10 failed", append(repeat(6, false), repeat(4, true)...), Closed},
		{"successes dilute failures", append(repeat(30, false), repeat(20, true)...), Closed},
		{"all succeeded", repeat(50, false), Closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, _ := newBreaker(t, BreakerConfig{MinRequests: 10, ErrorRatio: 0.5, OpenFor: time.Hour})
			outcomes(t, b, tt.fails...)
			if got := b.State(); got != tt.want {
				t.Errorf("State() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestBreakerWindowForgets: failures older than the window no longer
// count towards opening it.
func TestBreakerWindowForgets(t *testing.T) {
	t.Parallel()
	b, _ := newBreaker(t, BreakerConfig{Window: 100 * time.Millisecond, MinRequests: 10, OpenFor: time.Hour})
	outcomes(t, b, repeat(9, true)...)
	start := time.Now()
	poll.Until(t, 5*time.Second, "the window to pass", func() bool { return time.Since(start) > 150*time.Millisecond })
	outcomes(t, b, true)
	if got := b.State(); got != Closed {
		t.Errorf("one failure after 9 that left the window: %v, want closed", got)
	}
}

// TestBreakerOpensProbesAndCloses walks a breaker through every state:
// open refuses with a RetryAfter, half-open lets Probes calls through and
// no more, a failed probe opens it again, good probes close it.
func TestBreakerOpensProbesAndCloses(t *testing.T) {
	t.Parallel()
	b, _ := newBreaker(t, BreakerConfig{MinRequests: 10, OpenFor: 50 * time.Millisecond, Probes: 2})
	trip(t, b)
	if _, ra, ok := b.Allow(); ok || ra < time.Second {
		t.Errorf("open: Allow() = ok %v, retryAfter %v; want refused, at least 1 s", ok, ra)
	}
	halfOpen := func() {
		t.Helper()
		poll.Until(t, 5*time.Second, "half-open", func() bool { return b.State() == HalfOpen })
	}

	halfOpen()
	done1, _, ok1 := b.Allow()
	done2, _, ok2 := b.Allow()
	_, ra, ok3 := b.Allow()
	if !ok1 || !ok2 || ok3 || ra < time.Second {
		t.Fatalf("half-open with 2 probes: allowed %v %v %v (retryAfter %v), want the first two only", ok1, ok2, ok3, ra)
	}
	done1(false)
	done1(true) // a second report does nothing
	if got := b.State(); got != Open {
		t.Fatalf("after a failed probe: %v, want open", got)
	}
	done2(true) // of the old generation: ignored

	halfOpen()
	outcomes(t, b, false)
	if got := b.State(); got != HalfOpen {
		t.Errorf("after 1 good probe of 2: %v, want still half-open", got)
	}
	outcomes(t, b, false)
	if got := b.State(); got != Closed {
		t.Errorf("after 2 good probes: %v, want closed", got)
	}
}

// TestRetryAfterCountsFromOpening: a refusal's RetryAfter is the time
// left of OpenFor since the breaker opened, not OpenFor since the
// refusal.
func TestRetryAfterCountsFromOpening(t *testing.T) {
	t.Parallel()
	const openFor = time.Hour
	b, _ := newBreaker(t, BreakerConfig{MinRequests: 10, OpenFor: openFor})
	before := trip(t, b)
	start := time.Now()
	poll.Until(t, 5*time.Second, "time to pass", func() bool { return time.Since(start) > 20*time.Millisecond })
	_, ra, ok := b.Allow()
	if ok || ra > openFor-20*time.Millisecond || ra < openFor-time.Since(before) {
		t.Errorf("Allow() = %v, %v; want refused with at most %v left of %v", ok, ra, openFor-20*time.Millisecond, openFor)
	}
	err := b.Do(context.Background(), func(context.Context) error { t.Error("fn ran while open"); return nil })
	var oe *OpenError
	if !errors.Is(err, ErrOpen) || !errors.As(err, &oe) || oe.Name != "origin" || oe.RetryAfter > ra || oe.RetryAfter < time.Second {
		t.Errorf("Do while open: %v, want an *OpenError for origin with RetryAfter at most %v", err, ra)
	}
	if !strings.Contains(err.Error(), "origin") {
		t.Errorf("OpenError %q does not name the dependency", err)
	}
}

var errNotFound = errors.New("not found")

// TestDoCountsWhatIsFailure: Do returns fn's error as it is and counts
// it as IsFailure says; context.Canceled counts neither way.
func TestDoCountsWhatIsFailure(t *testing.T) {
	t.Parallel()
	notFoundIsFine := func(err error) bool { return err != nil && !errors.Is(err, errNotFound) }
	tests := []struct {
		name      string
		isFailure func(error) bool
		err       error
		want      State
	}{
		{"default: errors fail", nil, errors.New("boom"), Open},
		{"default: canceled does not", nil, context.Canceled, Closed},
		{"default: deadline does", nil, context.DeadlineExceeded, Open},
		{"default: not found fails", nil, errNotFound, Open},
		{"custom: not found does not", notFoundIsFine, errNotFound, Closed},
		{"custom: others fail", notFoundIsFine, errors.New("boom"), Open},
		{"custom: canceled does not", notFoundIsFine, context.Canceled, Closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, _ := newBreaker(t, BreakerConfig{MinRequests: 10, OpenFor: time.Hour, IsFailure: tt.isFailure})
			for range 20 {
				err := b.Do(context.Background(), func(context.Context) error { return tt.err })
				if errors.Is(err, ErrOpen) {
					break
				}
				if err != tt.err {
					t.Fatalf("Do returned %v, want fn's %v as it is", err, tt.err)
				}
			}
			if got := b.State(); got != tt.want {
				t.Errorf("after 20 calls failing with %v: %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestDoCancelledFirst: a ctx already done does not reach the breaker or
// fn; a canceled probe frees its slot for another.
func TestDoCancelledFirst(t *testing.T) {
	t.Parallel()
	b, _ := newBreaker(t, BreakerConfig{MinRequests: 10, OpenFor: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Do(ctx, func(context.Context) error { t.Error("fn ran"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Do with a done ctx: %v, want context.Canceled", err)
	}
	trip(t, b)
	poll.Until(t, 5*time.Second, "half-open", func() bool { return b.State() == HalfOpen })
	if err := b.Do(context.Background(), func(context.Context) error { return context.Canceled }); err != context.Canceled {
		t.Fatalf("canceled probe: %v", err)
	}
	if err := b.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Errorf("a probe after a canceled one: %v, want it let through", err)
	}
	if got := b.State(); got != Closed {
		t.Errorf("after a good probe: %v, want closed", got)
	}
}

// TestDoPanicCountsAsFailure: a panicking fn is a failure, and the panic
// goes on up.
func TestDoPanicCountsAsFailure(t *testing.T) {
	t.Parallel()
	b, _ := newBreaker(t, BreakerConfig{MinRequests: 1, OpenFor: time.Hour})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not go on up")
			}
		}()
		b.Do(context.Background(), func(context.Context) error { panic("boom") })
	}()
	if got := b.State(); got != Open {
		t.Errorf("after a panic: %v, want open", got)
	}
}

// TestBreakerMetricsAndLog: state changes set the gauge, count the
// transition and are logged at Warn; refusals are counted.
func TestBreakerMetricsAndLog(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("NewMetrics twice in one registry: nil error")
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b, err := NewBreaker("origin", BreakerConfig{MinRequests: 10, OpenFor: 50 * time.Millisecond}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	breaker := map[string]string{"breaker": "origin"}
	if got := metricValue(t, reg, "fillcast_breaker_state", breaker); got != 0 {
		t.Errorf("new breaker: state gauge %v, want 0", got)
	}
	trip(t, b)
	for range 3 {
		b.Allow()
	}
	poll.Until(t, 5*time.Second, "half-open", func() bool { return b.State() == HalfOpen })
	outcomes(t, b, false)

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"fillcast_breaker_state", breaker, 0},
		{"fillcast_breaker_rejected_total", breaker, 3},
		{"fillcast_breaker_transitions_total", map[string]string{"breaker": "origin", "to": "open"}, 1},
		{"fillcast_breaker_transitions_total", map[string]string{"breaker": "origin", "to": "half-open"}, 1},
		{"fillcast_breaker_transitions_total", map[string]string{"breaker": "origin", "to": "closed"}, 1},
	}
	for _, tt := range tests {
		if got := metricValue(t, reg, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	out := logs.String()
	for _, want := range []string{"level=WARN", "breaker=origin", "from=closed to=open", "from=open to=half-open", "from=half-open to=closed"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestBreakerConcurrentUse: many goroutines calling at once while the
// breaker trips and recovers (run with -race).
func TestBreakerConcurrentUse(t *testing.T) {
	t.Parallel()
	b, _ := newBreaker(t, BreakerConfig{MinRequests: 5, OpenFor: time.Millisecond, Probes: 3})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				fail := (g+i)%2 == 0
				b.Do(context.Background(), func(context.Context) error {
					if fail {
						return errors.New("boom")
					}
					return nil
				})
				b.State()
			}
		})
	}
	wg.Wait()
}
