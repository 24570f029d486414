package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/search"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// operatorKey creates an API key of the operator scope.
func operatorKey(t *testing.T, a *API) string {
	t.Helper()
	var v APIKeyView
	call{method: "POST", path: "/v1/apikeys", body: `{"name":"ops","scope":"operator"}`, bearer: "adm"}.want(t, a, 201, &v)
	return v.Key
}

// TestRuleKinds: static and limit rules answer at once on the node,
// invalid rules get a 400 with the reason, and every change is audited.
func TestRuleKinds(t *testing.T) {
	t.Parallel()
	a := newTestAPIWith(t, func(d *Deps) { withDiscovery(t, d, t.TempDir()) })
	op := operatorKey(t, a)
	viewer := signIn(t, a, "rules@example.com", "wall")
	search := call{method: "GET", path: "/v1/search?q=one", bearer: viewer}

	bad := []struct{ body, reason string }{
		{`{"kind":"static","route":"GET /v1/nope","status":503}`, "not a route"},
		{`{"kind":"canary","title":"*","percent":120,"target":{"appliances":["aa"]}}`, "percent"},
		{`{"kind":"route","target":{"site":"isp1"}}`, "match"},
		{`{"kind":"teleport"}`, "kind"},
		{`{"kind":"static","route":"GET /v1/search","status":503,"colour":"red"}`, "colour"},
		{`{"kind":"static","route":"POST /v1/internal/apply","status":503}`, "not a route"}, // the cluster's own
		{`{"kind":"limit","route":"heartbeat","per_second":1,"burst":1}`, "not a route"},    // critical: never limited
		{`{"kind":"static","route":"DELETE /v1/rules/{id}","status":503}`, "not a route"},   // the rules' own
	}
	for _, b := range bad {
		body := call{method: "PUT", path: "/v1/rules/bad", body: b.body, bearer: op}.want(t, a, 400, nil)
		if !strings.Contains(body, b.reason) {
			t.Errorf("PUT %s: %s, want the reason to name %q", b.body, body, b.reason)
		}
	}

	search.want(t, a, 200, nil)
	call{method: "PUT", path: "/v1/rules/maint", bearer: op,
		body: `{"kind":"static","route":"GET /v1/search","status":503,"body":{"error":"search is down for maintenance"},"retry_after":120}`}.want(t, a, 200, nil)
	w := search.do(t, a)
	if w.Code != 503 || w.Header().Get("Retry-After") != "120" || !strings.Contains(w.Body.String(), "search is down for maintenance") {
		t.Fatalf("search under a static rule: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	call{method: "DELETE", path: "/v1/rules/maint", bearer: op}.want(t, a, 204, nil)
	search.want(t, a, 200, nil)

	call{method: "PUT", path: "/v1/rules/slow-search", bearer: op,
		body: `{"kind":"limit","route":"search","class":"viewer","per_second":0.01,"burst":2}`}.want(t, a, 200, nil)
	search.want(t, a, 200, nil)
	search.want(t, a, 200, nil)
	if w := search.do(t, a); w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("third search under a limit of 2: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	call{method: "GET", path: "/v1/titles", bearer: viewer}.want(t, a, 200, nil) // another route: not limited

	// A limit rule blocking every operator key still lets operators
	// delete it.
	call{method: "PUT", path: "/v1/rules/lockout", bearer: op, body: `{"kind":"limit","class":"apikey","per_second":0,"burst":0}`}.want(t, a, 200, nil)
	call{method: "GET", path: "/v1/titles", bearer: op}.want(t, a, 429, nil)
	call{method: "DELETE", path: "/v1/rules/lockout", bearer: op}.want(t, a, 204, nil)
	call{method: "GET", path: "/v1/titles", bearer: op}.want(t, a, 200, nil)

	var audit []fsm.RuleChange
	call{method: "GET", path: "/v1/rules/audit", bearer: op}.want(t, a, 200, &audit)
	if len(audit) != 5 || audit[0].ID != "lockout" || audit[0].Op != "delete" || audit[2].ID != "slow-search" || audit[3].Op != "delete" || audit[4].Op != "put" || !strings.HasPrefix(audit[4].By, "operator:") || audit[4].At.IsZero() {
		t.Fatalf("audit %+v, want put and delete maint, put slow-search, put and delete lockout by the operator, newest first", audit)
	}
}

// TestSteeringRules: a canary at 100 % sends every new playback to its
// target first, and a route rule steers requests with a header to an
// appliance group.
func TestSteeringRules(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	op := operatorKey(t, a)
	viewer := signIn(t, a, "steer@example.com", "wall")
	first := func(beta string) string {
		t.Helper()
		c := call{method: "GET", path: "/v1/playback/t1", bearer: viewer}
		if beta != "" {
			c.header = http.Header{"X-Fillcast-Beta": {beta}}
		}
		var p fillcast.Playback
		c.want(t, a, 200, &p)
		call{method: "DELETE", path: "/v1/streams/" + p.StreamID, bearer: viewer}.want(t, a, 204, nil)
		return p.URLs[0]
	}
	call{method: "PUT", path: "/v1/rules/beta", bearer: op,
		body: `{"kind":"route","match":{"header":"X-Fillcast-Beta","value":"1"},"target":{"appliances":["ar","as"]}}`}.want(t, a, 200, nil)
	for range 5 {
		if u := first("1"); !strings.HasPrefix(u, "http://ar:8080/") && !strings.HasPrefix(u, "http://as:8080/") {
			t.Fatalf("beta playback went to %s, want ar or as", u)
		}
	}
	call{method: "PUT", path: "/v1/rules/all-to-at", bearer: op,
		body: `{"kind":"canary","title":"*","percent":100,"target":{"appliances":["at"]}}`}.want(t, a, 200, nil)
	for range 5 {
		if u := first(""); !strings.HasPrefix(u, "http://at:8080/") {
			t.Fatalf("playback under a 100 %% canary went to %s, want at", u)
		}
	}
}

// failingSearch is the real index, failing on demand.
type failingSearch struct {
	real Search
	fail atomic.Bool
}

var errIndexDown = errors.New("search: index unavailable")

func (f *failingSearch) Search(ctx context.Context, r search.Request) (*search.Results, error) {
	if f.fail.Load() {
		return nil, errIndexDown
	}
	return f.real.Search(ctx, r)
}

func (f *failingSearch) Suggest(ctx context.Context, r search.Request) (*search.Results, error) {
	return f.real.Suggest(ctx, r)
}

// TestSearchFallback: while search fails, and once its breaker opens, a
// query asked before gets its last good answer; a new one gets the error.
func TestSearchFallback(t *testing.T) {
	t.Parallel()
	fs := &failingSearch{}
	a := newTestAPIWith(t, func(d *Deps) {
		withDiscovery(t, d, t.TempDir())
		fs.real = d.Search
		d.Search = fs
	})
	op := operatorKey(t, a)
	good := call{method: "GET", path: "/v1/search?q=one", bearer: op}.want(t, a, 200, nil)
	fs.fail.Store(true)
	for i := range 30 { // past the breaker's 20 requests
		w := call{method: "GET", path: "/v1/search?q=one", bearer: op}.do(t, a)
		if w.Code != 200 || w.Header().Get("X-Fillcast-Fallback") != "last-good" || w.Body.String() != good {
			t.Fatalf("search %d while the index fails: %d %q %s", i, w.Code, w.Header().Get("X-Fillcast-Fallback"), w.Body)
		}
	}
	if got := testutil.ToFloat64(a.fallbacks.vec.WithLabelValues(fallbackSearchLastGood)); got != 30 {
		t.Errorf("fallback counter %v, want 30", got)
	}
	call{method: "GET", path: "/v1/search?q=never", bearer: op}.want(t, a, 503, nil)
}
