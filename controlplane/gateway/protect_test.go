package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/internal/poll"
)

// fallbackText is a fallback that names its cause.
func fallbackText(w http.ResponseWriter, r *http.Request, cause error) error {
	reason := "error"
	switch {
	case errors.Is(cause, ErrTimeout):
		reason = "timeout"
	case errors.Is(cause, ErrBulkheadFull):
		reason = "bulkhead"
	case errors.Is(cause, ErrCircuitOpen):
		reason = "circuit"
	}
	return WriteJSON(w, http.StatusOK, map[string]string{"fallback": reason})
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	tests := []struct {
		name       string
		opts       RouteOptions
		h          HandlerFunc
		wantStatus int
		wantBody   string // substring
		wantLength string
	}{
		{"endpoint ignores its context", RouteOptions{Timeout: 20 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) error {
			<-release
			io.WriteString(w, "late")
			return nil
		}, 504, `"error":"the request took too long`, ""},
		{"timeout with fallback", RouteOptions{Timeout: 20 * time.Millisecond, Fallback: fallbackText}, func(w http.ResponseWriter, r *http.Request) error {
			<-r.Context().Done()
			return r.Context().Err()
		}, 200, `{"fallback":"timeout"}`, ""},
		{"answer in time is copied", RouteOptions{Timeout: time.Minute}, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("X-Made-By", "endpoint")
			return WriteJSON(w, http.StatusCreated, map[string]string{"id": "t1"})
		}, 201, `{"id":"t1"}`, "12"},
		{"endpoint error with fallback", RouteOptions{Timeout: time.Minute, Fallback: fallbackText}, func(w http.ResponseWriter, r *http.Request) error {
			io.WriteString(w, "half a response that must not leak")
			return errors.New("store: unavailable")
		}, 200, `{"fallback":"error"}`, ""},
		{"client error skips fallback", RouteOptions{Timeout: time.Minute, Fallback: fallbackText}, func(w http.ResponseWriter, r *http.Request) error {
			return Errorf(http.StatusNotFound, "no such title")
		}, 404, "no such title", ""},
		{"response over the buffer", RouteOptions{Timeout: time.Minute}, func(w http.ResponseWriter, r *http.Request) error {
			_, err := w.Write(make([]byte, 2048))
			if !errors.Is(err, ErrResponseTooLarge) {
				return fmt.Errorf("write = %v, want ErrResponseTooLarge", err)
			}
			return nil
		}, 500, "internal error", ""},
		{"panic on the worker", RouteOptions{Timeout: time.Minute}, func(w http.ResponseWriter, r *http.Request) error {
			panic("worker boom")
		}, 500, "internal error", ""},
		{"streaming endpoint sees the deadline", RouteOptions{Timeout: 20 * time.Millisecond, Streaming: true}, func(w http.ResponseWriter, r *http.Request) error {
			<-r.Context().Done()
			return r.Context().Err()
		}, 504, "took too long", ""},
		{"streaming endpoint flushes", RouteOptions{Timeout: time.Minute, Streaming: true}, func(w http.ResponseWriter, r *http.Request) error {
			io.WriteString(w, "part1 ")
			if err := http.NewResponseController(w).Flush(); err != nil {
				return err
			}
			io.WriteString(w, "part2")
			return nil
		}, 200, "part1 part2", ""},
	}
	tg := newTestGateway(t, Config{MaxBufferBytes: 1024})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Name = fmt.Sprintf("timed%d", i)
			path := fmt.Sprintf("/timed/%d", i)
			tg.handle(t, "GET "+path, tt.opts, tt.h)
			got := tg.do(t, "GET", path, nil, "")
			if got.status != tt.wantStatus || !strings.Contains(got.body, tt.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", got.status, got.body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantLength != "" && got.header.Get("Content-Length") != tt.wantLength {
				t.Errorf("Content-Length = %q, want %q", got.header.Get("Content-Length"), tt.wantLength)
			}
			if strings.Contains(got.body, "leak") || strings.Contains(got.body, "late") {
				t.Errorf("body %q carries output the gateway should have dropped", got.body)
			}
		})
	}
	if got := metricValue(t, tg.reg, "fillcast_api_rejected_total", map[string]string{"route": "timed0", "reason": "timeout"}); got != 1 {
		t.Errorf("timeouts counted for timed0 = %v, want 1", got)
	}
}

func TestCloseWaitsForLateEndpoints(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	release := make(chan struct{})
	var finished atomic.Bool
	tg.handle(t, "GET /slow", RouteOptions{Name: "slow", Timeout: 10 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) error {
		<-release
		finished.Store(true)
		return nil
	})
	if got := tg.do(t, "GET", "/slow", nil, ""); got.status != 504 {
		t.Fatalf("status = %d, want 504", got.status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tg.Close(ctx); err == nil {
		t.Fatalf("Close with a late endpoint running and a done context = nil, want an error")
	}
	close(release)
	if err := tg.Close(context.Background()); err != nil || !finished.Load() {
		t.Fatalf("Close = %v, endpoint finished %v; want nil and true", err, finished.Load())
	}
	if got := tg.do(t, "GET", "/slow", nil, ""); got.status != 503 {
		t.Errorf("timed route after Close: status = %d, want 503", got.status)
	}
}

// blocker is an endpoint that holds requests until released.
type blocker struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *blocker) serve(w http.ResponseWriter, r *http.Request) error {
	b.entered <- struct{}{}
	<-b.release
	_, err := io.WriteString(w, "done")
	return err
}

// hold starts a request in the background and waits until the endpoint
// has it; the returned wait gives its status.
func (tg *testGateway) hold(t *testing.T, b *blocker, path string) (wait func() int) {
	t.Helper()
	status := make(chan int, 1)
	go func() {
		resp, err := tg.srv.Client().Get(tg.srv.URL + path)
		if err != nil {
			status <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	<-b.entered
	return func() int { return <-status }
}

func TestBulkhead(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	b := newBlocker()
	tg.handle(t, "GET /bh", RouteOptions{Name: "bh", MaxConcurrent: 1}, b.serve)
	tg.handle(t, "GET /bhfb", RouteOptions{Name: "bhfb", MaxConcurrent: 1, Fallback: fallbackText}, b.serve)
	tg.handle(t, "GET /bhtimed", RouteOptions{Name: "bhtimed", MaxConcurrent: 1, Timeout: 10 * time.Millisecond}, b.serve)

	waitA := tg.hold(t, b, "/bh")
	waitB := tg.hold(t, b, "/bhfb")
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/bh", 503, "too many requests on this route"},
		{"/bhfb", 200, `{"fallback":"bulkhead"}`},
	}
	for _, tt := range tests {
		got := tg.do(t, "GET", tt.path, nil, "")
		if got.status != tt.wantStatus || !strings.Contains(got.body, tt.wantBody) {
			t.Errorf("GET %s while full = %d %q, want %d containing %q", tt.path, got.status, got.body, tt.wantStatus, tt.wantBody)
		}
	}
	// A timed-out endpoint keeps its slot until it really returns.
	status := make(chan int, 1)
	go func() { status <- tg.do(t, "GET", "/bhtimed", nil, "").status }()
	<-b.entered
	if got := <-status; got != 504 {
		t.Errorf("timed request = %d, want 504", got)
	}
	if got := tg.do(t, "GET", "/bhtimed", nil, ""); got.status != 503 {
		t.Errorf("timed route while its late endpoint runs = %d, want 503", got.status)
	}
	close(b.release)
	if a, bb := waitA(), waitB(); a != 200 || bb != 200 {
		t.Errorf("held requests = %d, %d, want 200, 200", a, bb)
	}
	for _, r := range tg.routesNamed("bh", "bhtimed") {
		poll.Until(t, 10*time.Second, "bulkhead "+r.name+" to empty", func() bool { return r.active.Load() == 0 })
	}
	if got := tg.do(t, "GET", "/bh", nil, ""); got.status != 200 {
		t.Errorf("after release = %d, want 200", got.status)
	}
	if got := metricValue(t, tg.reg, "fillcast_api_rejected_total", map[string]string{"route": "bh", "reason": "bulkhead"}); got != 1 {
		t.Errorf("bulkhead rejections for bh = %v, want 1", got)
	}
}

// routesNamed finds registered routes by name, for white-box checks.
func (tg *testGateway) routesNamed(names ...string) []*route {
	var out []*route
	for _, n := range names {
		h, _ := tg.mux.Handler(&http.Request{Method: "GET", URL: mustURL("/" + n), Host: "x"})
		if rt, ok := h.(*route); ok {
			out = append(out, rt)
		}
	}
	return out
}

// TestCircuitBreaker runs a route's breaker on real time with a short
// OpenFor: it opens on failures, answers 503 (or the fallback) without
// calling the endpoint, probes once OpenFor has passed, and closes on a
// good probe or opens again on a bad one.
func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	var failing atomic.Bool
	var calls atomic.Int64
	cfg := protect.BreakerConfig{MinRequests: 4, ErrorRatio: 0.5, OpenFor: 100 * time.Millisecond}
	h := func(w http.ResponseWriter, r *http.Request) error {
		calls.Add(1)
		if failing.Load() {
			return errors.New("search: index unavailable")
		}
		_, err := io.WriteString(w, "ok")
		return err
	}
	tg.handle(t, "GET /cb", RouteOptions{Name: "cb", Breaker: &cfg}, h)
	state := func() protect.State {
		return protect.State(metricValue(t, tg.reg, "fillcast_breaker_state", map[string]string{"breaker": "route_cb"}))
	}
	// get asks once, and reports the status and whether the endpoint ran.
	get := func() (int, bool, string) {
		before := calls.Load()
		got := tg.do(t, "GET", "/cb", nil, "")
		return got.status, calls.Load() > before, got.header.Get("Retry-After")
	}
	steps := []struct {
		fail       bool
		wantStatus int
		wantCalled bool
		wantState  protect.State
	}{
		{false, 200, true, protect.Closed},
		{false, 200, true, protect.Closed},
		{true, 500, true, protect.Closed},
		{true, 500, true, protect.Open}, // 2 of 4 failed
		{false, 503, false, protect.Open},
	}
	for i, s := range steps {
		failing.Store(s.fail)
		status, called, retry := get()
		if status != s.wantStatus || called != s.wantCalled {
			t.Fatalf("step %d: status %d, endpoint called %v; want %d, %v", i, status, called, s.wantStatus, s.wantCalled)
		}
		if status == 503 && retry != "1" {
			t.Errorf("step %d: Retry-After = %q, want 1 (at least a second)", i, retry)
		}
		if got := state(); got != s.wantState {
			t.Errorf("step %d: breaker state metric = %v, want %v", i, got, s.wantState)
		}
	}

	// Once OpenFor has passed, a failed probe opens the breaker again...
	failing.Store(true)
	poll.Until(t, 10*time.Second, "a probe to reach the failing endpoint", func() bool {
		status, called, _ := get()
		return called && status == 500
	})
	if status, called, _ := get(); status != 503 || called {
		t.Errorf("after a failed probe: status %d, endpoint called %v; want 503 and not called", status, called)
	}
	// ...and a good one closes it.
	failing.Store(false)
	poll.Until(t, 10*time.Second, "a good probe", func() bool {
		status, called, _ := get()
		return called && status == 200
	})
	for range 3 {
		if status, called, _ := get(); status != 200 || !called {
			t.Fatalf("after a good probe: status %d, endpoint called %v; want 200 and called", status, called)
		}
	}
	if got := state(); got != protect.Closed {
		t.Errorf("breaker state metric = %v, want closed", got)
	}
	if got := metricValue(t, tg.reg, "fillcast_api_rejected_total", map[string]string{"route": "cb", "reason": "circuit_open"}); got < 2 {
		t.Errorf("circuit_open rejections = %v, want at least 2", got)
	}

	// With a fallback, an open circuit answers through it.
	fb := protect.BreakerConfig{MinRequests: 1, ErrorRatio: 1, OpenFor: time.Minute}
	failing.Store(true)
	tg.handle(t, "GET /cbfb", RouteOptions{Name: "cbfb", Breaker: &fb, Fallback: fallbackText}, h)
	for _, want := range []string{`{"fallback":"error"}`, `{"fallback":"circuit"}`} {
		if got := tg.do(t, "GET", "/cbfb", nil, ""); got.status != 200 || !strings.Contains(got.body, want) {
			t.Errorf("GET /cbfb = %d %q, want 200 %s", got.status, got.body, want)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{MaxBodyBytes: 64})
	var calls atomic.Int64
	decode := func(w http.ResponseWriter, r *http.Request) error {
		calls.Add(1)
		var v struct {
			Name string `json:"name"`
		}
		if err := DecodeJSON(r, &v); err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, v)
	}
	tg.handle(t, "POST /small", RouteOptions{Name: "small", MaxBodyBytes: 16}, decode)
	tg.handle(t, "POST /default", RouteOptions{Name: "dflt"}, decode)
	tg.handle(t, "POST /unlimited", RouteOptions{Name: "unlimited", MaxBodyBytes: -1}, decode)
	big := `{"name":"` + strings.Repeat("x", 100) + `"}`
	tests := []struct {
		name       string
		path       string
		body       io.Reader
		wantStatus int
		wantCalled bool
	}{
		{"fits", "/small", strings.NewReader(`{"name":"a"}`), 200, true},
		{"declared length too big", "/small", strings.NewReader(`{"name":"abcdefghijk"}`), 413, false},
		{"chunked body too big", "/small", io.MultiReader(strings.NewReader(`{"name":"abcdefghijk"}`)), 413, true},
		{"gateway default", "/default", strings.NewReader(big), 413, false},
		{"unlimited", "/unlimited", strings.NewReader(big), 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := calls.Load()
			resp, err := tg.srv.Client().Post(tg.srv.URL+tt.path, "application/json", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d (%s)", resp.StatusCode, tt.wantStatus, b)
			}
			if called := calls.Load() > before; called != tt.wantCalled {
				t.Errorf("endpoint called = %v, want %v", called, tt.wantCalled)
			}
		})
	}
}
