package protect

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/clocktest"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/prometheus/client_golang/prometheus"
)

var errBusy = errors.New("busy")

// fast retries at once, so that tests about counts take no time.
var fast = RetryConfig{Attempts: 3, Base: time.Microsecond, Max: time.Microsecond}

func TestRetryConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   RetryConfig
		field string // "" for no error
	}{
		{"zero is the defaults", RetryConfig{}, ""},
		{"defaults", DefaultRetryConfig(), ""},
		{"no retry", RetryConfig{Attempts: 1}, ""},
		{"negative attempts", RetryConfig{Attempts: -1}, "Attempts"},
		{"negative base", RetryConfig{Base: -time.Second}, "Base"},
		{"negative max", RetryConfig{Max: -time.Second}, "Max"},
		{"max under base", RetryConfig{Base: time.Second, Max: time.Millisecond}, "Max"},
		{"max under the default base", RetryConfig{Max: time.Millisecond}, "Max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantConfigError(t, tt.cfg.Validate(), tt.field)
		})
	}
}

// TestBackoffBounds: the wait's ceiling doubles from Base each retry up
// to Max, and the wait is drawn from [0, ceiling].
func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	cfg := DefaultRetryConfig() // 50 ms to 1 s
	highest := func(n int64) int64 { return n - 1 }
	lowest := func(int64) int64 { return 0 }
	tests := []struct {
		retry int
		want  time.Duration
	}{
		{1, 50 * time.Millisecond},
		{2, 100 * time.Millisecond},
		{3, 200 * time.Millisecond},
		{5, 800 * time.Millisecond},
		{6, time.Second},
		{100, time.Second},
	}
	for _, tt := range tests {
		if got := backoff(cfg, tt.retry, highest); got != tt.want {
			t.Errorf("retry %d: longest wait %v, want %v", tt.retry, got, tt.want)
		}
		if got := backoff(cfg, tt.retry, lowest); got != 0 {
			t.Errorf("retry %d: shortest wait %v, want 0", tt.retry, got)
		}
	}
	huge := RetryConfig{Base: time.Second, Max: 1<<63 - 1}
	if got := backoff(huge, 80, highest); got < huge.Max-1 { // Max itself cannot be drawn: n would overflow
		t.Errorf("a ceiling doubled past int64: %v, want Max", got)
	}
}

// TestBackoffIsJittered: waits drawn from the real source spread over
// [0, ceiling], about ceiling/2 on average ("full jitter"), so that
// callers that failed together do not retry together.
func TestBackoffIsJittered(t *testing.T) {
	t.Parallel()
	cfg := DefaultRetryConfig()
	const n = 2000
	ceiling := 200 * time.Millisecond // retry 3
	seen := map[time.Duration]bool{}
	var sum time.Duration
	for range n {
		d := backoff(cfg, 3, rand.Int64N)
		if d < 0 || d > ceiling {
			t.Fatalf("wait %v outside [0, %v]", d, ceiling)
		}
		seen[d] = true
		sum += d
	}
	if mean := sum / n; mean < ceiling*4/10 || mean > ceiling*6/10 {
		t.Errorf("mean wait %v, want about %v", mean, ceiling/2)
	}
	if len(seen) < n*9/10 {
		t.Errorf("%d distinct waits of %d: not jittered", len(seen), n)
	}
}

// TestRetry: which errors are retried, and how often.
func TestRetry(t *testing.T) {
	t.Parallel()
	errBad := errors.New("bad request")
	onlyBusy := func(err error) bool { return errors.Is(err, errBusy) }
	tests := []struct {
		name      string
		cfg       RetryConfig
		retryable func(error) bool
		errs      []error // fn's errors, call by call; nil after the last
		wantCalls int
		wantErr   error
	}{
		{"success at once", fast, onlyBusy, nil, 1, nil},
		{"success on the third", fast, onlyBusy, []error{errBusy, errBusy}, 3, nil},
		{"always failing", fast, onlyBusy, []error{errBusy, errBusy, errBusy, errBusy}, 3, errBusy},
		{"not retryable", fast, onlyBusy, []error{errBad}, 1, errBad},
		{"retryable, then not", fast, onlyBusy, []error{errBusy, errBad}, 2, errBad},
		{"no retry configured", RetryConfig{Attempts: 1}, onlyBusy, []error{errBusy}, 1, errBusy},
		{"nil retryable retries all", fast, nil, []error{errBad, errBad}, 3, nil},
		{"five attempts", RetryConfig{Attempts: 5, Base: time.Microsecond, Max: time.Microsecond}, onlyBusy,
			[]error{errBusy, errBusy, errBusy, errBusy, errBusy}, 5, errBusy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := NewBudget(BudgetConfig{})
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			err = Retry(context.Background(), tt.cfg, b, tt.retryable, func(context.Context) error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if calls != tt.wantCalls || err != tt.wantErr {
				t.Errorf("Retry made %d calls and returned %v; want %d and %v", calls, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
}

// TestRetryBudgetCapsLoad: 1,000 calls to a dependency that always fails
// make at most 10 % more calls, plus the floor, not the 2,000 more that
// three attempts each would.
func TestRetryBudgetCapsLoad(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Unix(1000, 0)) // the whole run within one window
	b, err := newBudget(DefaultBudgetConfig(), clk.Now, WithBudgetMetrics("cp", m))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for range 1000 {
		err := Retry(context.Background(), fast, b, nil, func(context.Context) error { calls++; return errBusy })
		if err != errBusy {
			t.Fatalf("Retry: %v, want the last error", err)
		}
	}
	retries := calls - 1000
	if retries > 100+30 || retries < 100 {
		t.Errorf("%d retries of 1,000 failing calls, want 100 (10 %%) + 30 (3/s over 10 s) at most, and the budget used", retries)
	}
	made := metricValue(t, reg, "fillcast_retries_total", map[string]string{"budget": "cp", "outcome": "made"})
	refused := metricValue(t, reg, "fillcast_retries_total", map[string]string{"budget": "cp", "outcome": "refused"})
	if int(made) != retries || refused < 900 {
		t.Errorf("metrics: %v made, %v refused; want %d made and the rest of the 1,000 calls refused", made, refused, retries)
	}
}

// TestRetryCancelStopsWaiting: a ctx that ends during the wait ends it at
// once, with an error that is both ctx's and fn's last.
func TestRetryCancelStopsWaiting(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := RetryConfig{Attempts: 3, Base: time.Hour, Max: time.Hour}
	done := make(chan error, 1)
	var calls atomic.Int64
	go func() {
		done <- Retry(ctx, slow, nil, nil, func(context.Context) error {
			calls.Add(1)
			return WithRetryAfter(errBusy, time.Hour) // a wait of an hour, not a random one
		})
	}()
	poll.Until(t, 10*time.Second, "the first call", func() bool { return calls.Load() == 1 })
	cancel()
	var err error
	poll.Until(t, 10*time.Second, "Retry to return", func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errBusy) || calls.Load() != 1 {
		t.Errorf("Retry after cancel: %v after %d calls; want context.Canceled and busy after 1", err, calls.Load())
	}
}

// TestRetryCtxEndedBeforeRetry: a ctx that ended while fn ran is not
// retried; the error says so, once.
func TestRetryCtxEndedBeforeRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fnErr     func(ctx context.Context) error
		wantBusy  bool
		wantWraps bool // by Retry, with its "protect:" prefix
	}{
		{"fn failed of its own", func(context.Context) error { return errBusy }, true, true},
		{"fn failed of ctx", func(ctx context.Context) error { return fmt.Errorf("dial: %w", ctx.Err()) }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			err := Retry(ctx, fast, nil, nil, func(ctx context.Context) error {
				calls++
				cancel()
				return tt.fnErr(ctx)
			})
			if calls != 1 || !errors.Is(err, context.Canceled) || errors.Is(err, errBusy) != tt.wantBusy ||
				strings.HasPrefix(err.Error(), "protect: ") != tt.wantWraps {
				t.Errorf("Retry: %v after %d calls; want context.Canceled after 1, busy %v, wrapped %v", err, calls, tt.wantBusy, tt.wantWraps)
			}
		})
	}
}

// TestRetryNotPastDeadline: a retry whose wait would outlast ctx's
// deadline is not made, and the call returns its error at once.
func TestRetryNotPastDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	calls := 0
	err := Retry(ctx, RetryConfig{Base: time.Hour, Max: time.Hour}, nil, nil, func(context.Context) error {
		calls++
		return WithRetryAfter(errBusy, time.Hour)
	})
	if !errors.Is(err, errBusy) || errors.Is(err, context.DeadlineExceeded) || calls != 1 {
		t.Errorf("Retry with a wait past the deadline: %v after %d calls; want busy after 1", err, calls)
	}
}

// TestRetryAfter: a Retry-After the error carries is waited, up to Max.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		after    time.Duration
		max      time.Duration
		atLeast  time.Duration
		giveUpIn time.Duration
	}{
		{"waited", 100 * time.Millisecond, time.Minute, 100 * time.Millisecond, 30 * time.Second},
		{"capped by Max", time.Hour, 10 * time.Millisecond, 10 * time.Millisecond, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := RetryConfig{Attempts: 2, Base: time.Microsecond, Max: tt.max}
			start := time.Now()
			done := make(chan error, 1)
			calls := 0
			go func() {
				done <- Retry(context.Background(), cfg, nil, nil, func(context.Context) error {
					calls++
					if calls == 1 {
						return WithRetryAfter(errBusy, tt.after)
					}
					return nil
				})
			}()
			var err error
			poll.Until(t, tt.giveUpIn, "Retry to return", func() bool {
				select {
				case err = <-done:
					return true
				default:
					return false
				}
			})
			if err != nil || calls != 2 || time.Since(start) < tt.atLeast {
				t.Errorf("Retry: %v after %d calls in %v; want success on the second after %v or more", err, calls, time.Since(start), tt.atLeast)
			}
		})
	}
	if err := WithRetryAfter(nil, time.Second); err != nil {
		t.Errorf("WithRetryAfter(nil) = %v", err)
	}
	if err := WithRetryAfter(errBusy, time.Second); !errors.Is(err, errBusy) || err.Error() != errBusy.Error() {
		t.Errorf("WithRetryAfter changed the error: %v", err)
	}
}
