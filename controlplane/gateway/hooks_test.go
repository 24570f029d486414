package gateway

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
)

// fakeRateLimiter refuses the routes in refuse and records what it saw.
type fakeRateLimiter struct {
	refuse map[string]time.Duration
	mu     sync.Mutex
	seen   []string // route principal client time
}

func (f *fakeRateLimiter) Allow(route string, p auth.Principal, client netip.Addr, now time.Time) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, route+" "+p.String()+" "+client.String()+" "+now.Format(time.RFC3339))
	retry, refused := f.refuse[route]
	return retry, !refused
}

func (f *fakeRateLimiter) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	rl := &fakeRateLimiter{refuse: map[string]time.Duration{"limited": 1500 * time.Millisecond, "critical": time.Second, "zero": 0}}
	keys := map[string]auth.Principal{"v1": {Kind: auth.Viewer, ID: "v1"}}
	tg := newGatewayWith(t, Config{}, func(d *Deps) {
		d.Authenticator = keyAuthn(keys)
		d.RateLimiter = rl
	})
	var ran atomic.Int64
	ok := func(w http.ResponseWriter, r *http.Request) error {
		ran.Add(1)
		return nil
	}
	viewers := auth.Policy{Viewer: true}
	tg.handle(t, "GET /limited", RouteOptions{Name: "limited", Policy: viewers}, ok)
	tg.handle(t, "GET /zero", RouteOptions{Name: "zero", Policy: viewers}, ok)
	tg.handle(t, "GET /free", RouteOptions{Name: "free", Policy: viewers}, ok)
	tg.handle(t, "GET /critical", RouteOptions{Name: "critical", Policy: viewers, Priority: PriorityCritical}, ok)
	bearer := http.Header{"Authorization": {"Bearer v1"}}
	tests := []struct {
		name       string
		path       string
		header     http.Header
		wantStatus int
		wantRetry  string
		wantError  string
		wantAsked  bool
	}{
		{"refused", "/limited", bearer, 429, "2", "rate limit exceeded: retry in 2 s", true},
		{"refused without a delay still says a second", "/zero", bearer, 429, "1", "rate limit exceeded: retry in 1 s", true},
		{"allowed", "/free", bearer, 200, "", "", true},
		{"critical routes skip it", "/critical", bearer, 200, "", "", false},
		{"the policy check comes first", "/limited", nil, 401, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked, before := len(rl.calls()), ran.Load()
			got := tg.do(t, "GET", tt.path, tt.header, "")
			if got.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", got.status, tt.wantStatus, got.body)
			}
			if r := got.header.Get("Retry-After"); r != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", r, tt.wantRetry)
			}
			if tt.wantError != "" {
				eb := errorBodyOf(t, got)
				if eb.Error != tt.wantError || eb.RequestID != got.header.Get("X-Request-Id") {
					t.Errorf("body = %+v, want error %q and the request id", eb, tt.wantError)
				}
			}
			if gotAsked := len(rl.calls()) > asked; gotAsked != tt.wantAsked {
				t.Errorf("rate limiter asked = %v, want %v", gotAsked, tt.wantAsked)
			}
			if endpoint := ran.Load() > before; endpoint != (tt.wantStatus == 200) {
				t.Errorf("endpoint ran = %v with status %d", endpoint, got.status)
			}
		})
	}
	want := "limited viewer:v1 127.0.0.1 " + tg.clock.Now().Format(time.RFC3339)
	if calls := rl.calls(); len(calls) == 0 || calls[0] != want {
		t.Errorf("rate limiter saw %q, want first %q", calls, want)
	}
	if got := metricValue(t, tg.reg, "fillcast_api_rejected_total", map[string]string{"route": "limited", "reason": "rate_limited"}); got != 1 {
		t.Errorf("rejected{reason=rate_limited} = %v, want 1", got)
	}
}

// fakeStatics answers from a fixed map.
type fakeStatics map[string]StaticResponse

func (f fakeStatics) Static(pattern string) (StaticResponse, bool) {
	r, ok := f[pattern]
	return r, ok
}

func TestStatics(t *testing.T) {
	t.Parallel()
	statics := fakeStatics{
		"GET /v1/search":    {Status: 503, Body: []byte(`{"error":"search is off for maintenance"}`), RetryAfter: 30 * time.Second},
		"GET /v1/recs/{id}": {Body: []byte(`{"results":[]}`)},
	}
	tg := newGatewayWith(t, Config{Concurrency: ConcurrencyConfig{Fixed: 1}}, func(d *Deps) {
		d.Statics = statics
		d.Authenticator = keyAuthn(nil)
	})
	var ran atomic.Int64
	ok := text("live")
	count := func(w http.ResponseWriter, r *http.Request) error {
		ran.Add(1)
		return ok(w, r)
	}
	tg.handle(t, "GET /v1/search", RouteOptions{Name: "search", Policy: auth.Public}, count)
	tg.handle(t, "GET /v1/recs/{id}", RouteOptions{Name: "recs", Policy: auth.AdminOnly}, count)
	tg.handle(t, "GET /v1/titles", RouteOptions{Name: "titles", Policy: auth.Public}, count)
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
		wantRetry  string
		wantRan    bool
	}{
		{"static answer", "/v1/search?q=x", 503, `{"error":"search is off for maintenance"}`, "30", false},
		{"before the policy check", "/v1/recs/t1", 200, `{"results":[]}`, "", false},
		{"no static for the pattern", "/v1/titles", 200, "live", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ran.Load()
			got := tg.do(t, "GET", tt.path, nil, "")
			if got.status != tt.wantStatus || got.body != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", got.status, got.body, tt.wantStatus, tt.wantBody)
			}
			if r := got.header.Get("Retry-After"); r != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", r, tt.wantRetry)
			}
			if !tt.wantRan && (got.header.Get("Content-Type") != "application/json" || got.header.Get("X-Request-Id") == "") {
				t.Errorf("static answer header %v, want JSON and a request id", got.header)
			}
			if r := ran.Load() > before; r != tt.wantRan {
				t.Errorf("endpoint ran = %v, want %v", r, tt.wantRan)
			}
		})
	}
	if got := metricValue(t, tg.reg, "fillcast_api_rejected_total", map[string]string{"route": "search", "reason": "static"}); got != 1 {
		t.Errorf("rejected{reason=static} = %v, want 1", got)
	}
	if strings.Contains(tg.do(t, "HEAD", "/v1/search", nil, "").body, "maintenance") {
		t.Error("a HEAD request got the static body")
	}
}
