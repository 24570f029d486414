package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/prometheus/client_golang/prometheus"
)

// quick retries at once: a test of which calls are retried takes no time.
var quick = protect.RetryConfig{Attempts: 3, Base: time.Microsecond, Max: 10 * time.Millisecond}

// flaky is a control-plane node that fails its first calls: each of
// fails is one answer's status, 0 a connection dropped before any
// answer. Member lists are refused (404), so that it stays the only node.
type flaky struct {
	srv        *httptest.Server
	retryAfter string // the Retry-After of a failure, if any

	mu    sync.Mutex
	fails []int
	calls int // but for member lists
}

func newFlaky(t *testing.T, retryAfter string, fails ...int) *flaky {
	t.Helper()
	f := &flaky{retryAfter: retryAfter, fails: fails}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *flaky) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == clusterPath {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.calls++
	status := http.StatusOK
	if len(f.fails) > 0 {
		status, f.fails = f.fails[0], f.fails[1:]
	}
	f.mu.Unlock()
	switch {
	case status == 0:
		panic(http.ErrAbortHandler) // the connection drops: a transport error
	case status != http.StatusOK:
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		http.Error(w, `{"error":"not now"}`, status)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/appliances/a1/usage":
		w.WriteHeader(http.StatusAccepted)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}
}

func (f *flaky) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// TestRetriesIdempotentCalls: a read, a usage summary or a fill pass
// that its only node failed is made again, up to Retry.Attempts in all,
// when the failure was a transport error or a 502, 503 or 504; nothing
// else is retried, and no other write.
func TestRetriesIdempotentCalls(t *testing.T) {
	t.Parallel()
	keys := func(c *Client) error { _, err := c.Keys(context.Background()); return err }
	manifest := func(c *Client) error { _, _, err := c.Manifest(context.Background(), "a1", ""); return err }
	usage := func(c *Client) error { return c.ReportUsage(context.Background(), testUsage("a1")) }
	fillPass := func(c *Client) error { _, err := c.FillPass(context.Background(), "a1"); return err }
	heartbeat := func(c *Client) error { return c.Heartbeat(context.Background(), "a1", beat) }
	write := func(c *Client) error {
		return c.Do(context.Background(), http.MethodPut, "/v1/sites/s1", map[string]string{"kind": "isp"}, nil)
	}
	tests := []struct {
		name      string
		call      func(c *Client) error
		fails     []int
		wantCalls int // at least, for dropped connections, which Go's transport may also retry
		wantCode  int // StatusCode of the error; -1 for no error
	}{
		{"keys after two 503s", keys, []int{503, 503}, 3, -1},
		{"manifest after a 502 and a 504", manifest, []int{502, 504}, 3, -1},
		{"keys after a dropped connection", keys, []int{0}, 2, -1},
		{"usage after a 503", usage, []int{503}, 2, -1},
		{"fill pass after a 503", fillPass, []int{503}, 2, -1},
		{"keys failing every time", keys, []int{503, 503, 503, 503}, 3, 503},
		{"a 404 is an answer", keys, []int{404}, 1, 404},
		{"a 500 is an answer", manifest, []int{500}, 1, 500},
		{"no heartbeat retried", heartbeat, []int{503, 503}, 1, 503},
		{"no other write retried", write, []int{503, 503}, 1, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFlaky(t, "", tt.fails...)
			c := newClient(t, Config{URLs: []string{f.srv.URL}, Retry: quick}, Deps{})
			err := tt.call(c)
			switch {
			case tt.wantCode < 0 && err != nil:
				t.Errorf("error %v, want the answer after the failures", err)
			case tt.wantCode >= 0 && StatusCode(err) != tt.wantCode:
				t.Errorf("error %v (status %d), want status %d", err, StatusCode(err), tt.wantCode)
			}
			if got := f.Calls(); got < tt.wantCalls || (tt.fails[0] != 0 && got != tt.wantCalls) {
				t.Errorf("the node took %d calls, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestRetryAfterIsHonoured: a node's Retry-After is waited instead of the
// backoff, capped by Retry.Max; a caller's ctx that ends during the wait
// ends the call.
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	f := newFlaky(t, "3600", 503)
	capped := protect.RetryConfig{Attempts: 2, Base: time.Microsecond, Max: 50 * time.Millisecond}
	c := newClient(t, Config{URLs: []string{f.srv.URL}, Retry: capped}, Deps{})
	start := time.Now()
	if err := returnsWithin(t, 30*time.Second, "Keys", func() error { _, err := c.Keys(context.Background()); return err }); err != nil {
		t.Fatalf("Keys after a 503 with Retry-After: %v", err)
	}
	if waited := time.Since(start); waited < capped.Max {
		t.Errorf("retried after %v, want the Retry-After capped by Max (%v), not the %v backoff", waited, capped.Max, capped.Base)
	}

	f = newFlaky(t, "3600", 503)
	c = newClient(t, Config{URLs: []string{f.srv.URL}, Retry: protect.RetryConfig{Max: time.Hour}}, Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := c.Keys(ctx); done <- err }()
	poll.Until(t, 10*time.Second, "the first call to fail", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.stale // the node failed: the call returned, to wait for its retry
	})
	cancel()
	err := returnsWithin(t, 10*time.Second, "Keys after cancel", func() error { return <-done })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) || StatusCode(err) != 503 {
		t.Errorf("Keys cancelled while waiting to retry: %v, want context.Canceled and the 503", err)
	}
}

// TestRetryBudgetIsShared: the Client's retries come out of one budget,
// whatever the call; once it is spent, calls fail at once, and the
// metrics count retries made and refused.
func TestRetryBudgetIsShared(t *testing.T) {
	t.Parallel()
	f := newFlaky(t, "", slices.Repeat([]int{503}, 30)...)
	reg := prometheus.NewRegistry()
	m, err := protect.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// One retry in the hour, and 1 % of calls: 10 calls earn none.
	budget := protect.BudgetConfig{Ratio: 0.01, MinPerSecond: 1.0 / 3600, Window: time.Hour}
	c := newClient(t, Config{URLs: []string{f.srv.URL}, Retry: quick, Budget: budget}, Deps{Metrics: m})
	for i := range 10 {
		if _, err := c.Keys(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("call %d: %v, want ErrUnavailable", i, err)
		}
	}
	if got := f.Calls(); got != 11 {
		t.Errorf("the node took %d calls, want 10 and the one retry the budget allows", got)
	}
	gathered, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range gathered {
		if mf.GetName() != "fillcast_retries_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["budget"] == "controlplane" {
				got[labels["outcome"]] = s.GetCounter().GetValue()
			}
		}
	}
	if got["made"] != 1 || got["refused"] != 10 {
		t.Errorf("fillcast_retries_total: %v, want 1 made and 10 refused", got)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"none", "", 0},
		{"seconds", "3", 3 * time.Second},
		{"spaces", " 7 ", 7 * time.Second},
		{"negative", "-1", 0},
		{"not a number", "soon", 0},
		{"a date ahead", now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{"a date gone", now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.value != "" {
				h.Set("Retry-After", tt.value)
			}
			if got := retryAfter(h, now); got != tt.want {
				t.Errorf("retryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

// TestConfigValidatesRetry: the retry settings are checked with the
// rest, named by their path.
func TestConfigValidatesRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative attempts", Config{URLs: []string{"http://cp1"}, Retry: protect.RetryConfig{Attempts: -1}}, "config Retry.Attempts"},
		{"ratio over 1", Config{URLs: []string{"http://cp1"}, Budget: protect.BudgetConfig{Ratio: 2}}, "config Budget.Ratio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, Deps{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error naming %q", err, tt.want)
			}
		})
	}
}
