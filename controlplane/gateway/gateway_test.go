package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/internal/poll"
)

func TestRouting(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	tg.handle(t, "GET /v1/titles/{id}", RouteOptions{Name: "get_title"}, func(w http.ResponseWriter, r *http.Request) error {
		return WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id"), "route": FromContext(r.Context()).Route()})
	})
	tg.handle(t, "POST /v1/titles", RouteOptions{Name: "create_title"}, text("created"))
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantBody           string // substring
		wantAllow          string
	}{
		{"path value", "GET", "/v1/titles/t1", 200, `{"id":"t1","route":"get_title"}`, ""},
		{"head on get route", "HEAD", "/v1/titles/t1", 200, "", ""},
		{"other route", "POST", "/v1/titles", 200, "created", ""},
		{"unknown path", "GET", "/v1/nope", 404, `"error":"no such endpoint`, ""},
		{"wrong method", "DELETE", "/v1/titles/t1", 405, `"error":"method not allowed`, "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tg.do(t, tt.method, tt.path, nil, "")
			if got.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", got.status, tt.wantStatus, got.body)
			}
			if !strings.Contains(got.body, tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", got.body, tt.wantBody)
			}
			if got.status >= 400 {
				if eb := errorBodyOf(t, got); eb.RequestID == "" || eb.RequestID != got.header.Get("X-Request-Id") {
					t.Errorf("request_id = %q, header X-Request-Id = %q; want equal and set", eb.RequestID, got.header.Get("X-Request-Id"))
				}
				if ct := got.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
			}
			if got := got.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	tg.handle(t, "GET /id", RouteOptions{Name: "id"}, func(w http.ResponseWriter, r *http.Request) error {
		_, err := io.WriteString(w, RequestID(r.Context()))
		return err
	})
	tests := []struct {
		name     string
		incoming string
		wantSame bool
	}{
		{"uuid honoured", "3f2c8a4e-1b7d-4c3a-9e2f-0a1b2c3d4e5f", true},
		{"trace style honoured", "Root=1-5759e988-bd862e3fe1be46a9", true},
		{"none generated", "", false},
		{"spaces replaced", "a b", false},
		{"quote replaced", `x"y`, false},
		{"too long replaced", strings.Repeat("a", 129), false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.incoming != "" {
				h.Set("X-Request-Id", tt.incoming)
			}
			got := tg.do(t, "GET", "/id", h, "")
			if got.body != got.header.Get("X-Request-Id") {
				t.Errorf("endpoint saw %q, response header says %q", got.body, got.header.Get("X-Request-Id"))
			}
			if same := got.body == tt.incoming; same != tt.wantSame {
				t.Errorf("id = %q for incoming %q; want reused %v", got.body, tt.incoming, tt.wantSame)
			}
			if !validRequestID(got.body) || seen[got.body] {
				t.Errorf("id %q invalid or repeated", got.body)
			}
			seen[got.body] = true
		})
	}
}

func TestEndpointErrors(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	tests := []struct {
		name       string
		h          HandlerFunc
		wantStatus int
		wantError  string
		wantRetry  string
	}{
		{"not found", func(w http.ResponseWriter, r *http.Request) error {
			return Errorf(http.StatusNotFound, "title %q not found", "t9")
		}, 404, `title "t9" not found`, ""},
		{"wrapped api error", func(w http.ResponseWriter, r *http.Request) error {
			return fmt.Errorf("catalog: %w", &Error{Status: 409, Message: "title is not ready"})
		}, 409, "title is not ready", ""},
		{"plain error hidden", func(w http.ResponseWriter, r *http.Request) error {
			return errors.New("raft: disk on fire")
		}, 500, "internal error", ""},
		{"retry after rounded up", func(w http.ResponseWriter, r *http.Request) error {
			return &Error{Status: 429, Message: "slow down", RetryAfter: 1500 * time.Millisecond}
		}, 429, "slow down", "2"},
		{"panic", func(w http.ResponseWriter, r *http.Request) error {
			panic("boom")
		}, 500, "internal error", ""},
		{"error after writing keeps the response", func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusAccepted)
			return errors.New("too late to say")
		}, 202, "", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fmt.Sprintf("/e%d", i)
			tg.handle(t, "GET "+path, RouteOptions{Name: fmt.Sprintf("e%d", i)}, tt.h)
			got := tg.do(t, "GET", path, nil, "")
			if got.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", got.status, tt.wantStatus, got.body)
			}
			if tt.wantError != "" {
				eb := errorBodyOf(t, got)
				if eb.Error != tt.wantError || eb.RequestID != got.header.Get("X-Request-Id") {
					t.Errorf("body = %+v, want error %q and request id %q", eb, tt.wantError, got.header.Get("X-Request-Id"))
				}
			}
			if got := got.header.Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
		})
	}
	var panics int
	for _, l := range tg.log.lines(t) {
		if l["msg"] == "panic serving request" && l["panic"] == "boom" && strings.Contains(fmt.Sprint(l["stack"]), "gateway") {
			panics++
		}
	}
	if panics != 1 {
		t.Errorf("logged %d panics with a stack, want 1", panics)
	}
}

func TestPanicAfterWriteAbortsConnection(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	tg.handle(t, "GET /half", RouteOptions{Name: "half"}, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("midway")
	})
	resp, err := tg.srv.Client().Get(tg.srv.URL + "/half")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("reading a body cut by a panic succeeded; want an error")
	}
	poll.Until(t, 10*time.Second, "the 500 to be counted", func() bool {
		return metricValue(t, tg.reg, "fillcast_api_requests_total", map[string]string{"route": "half", "code": "500"}) == 1
	})
}

// TestPolicy: each route's policy admits exactly its principals; a bad
// credential is 401, an unadmitted principal 403 "forbidden" with the
// reason only in the log and the denied counter.
func TestPolicy(t *testing.T) {
	t.Parallel()
	keys := map[string]auth.Principal{
		"adm":  {Kind: auth.Operator, ID: "k0", Scope: auth.ScopeAdmin},
		"rd":   {Kind: auth.Operator, ID: "k1", Scope: auth.ScopeRead},
		"a1":   {Kind: auth.Appliance, ID: "a1"},
		"node": {Kind: auth.Node, ID: "n1"},
	}
	tg := newAuthGateway(t, Config{}, keyAuthn(keys))
	var called atomic.Int32
	count := func(w http.ResponseWriter, r *http.Request) error {
		called.Add(1)
		_, err := io.WriteString(w, Principal(r.Context()).String())
		return err
	}
	tg.handle(t, "PUT /v1/sites/{id}", RouteOptions{Name: "put_site", Policy: auth.AdminOnly}, count)
	tg.handle(t, "GET /v1/sites/{id}", RouteOptions{Name: "get_site", Policy: auth.Public}, count)
	tg.handle(t, "GET /v1/fleet", RouteOptions{Name: "fleet", Policy: auth.Policy{Scopes: auth.ScopeRead}}, count)
	tg.handle(t, "POST /v1/appliances/{id}/heartbeat", RouteOptions{Name: "heartbeat", Policy: auth.Policy{Appliance: auth.ApplianceSelf}}, count)
	tg.handle(t, "POST /internal/apply", RouteOptions{Name: "apply", Policy: auth.Policy{Node: true}}, count)
	if err := tg.Handle("GET /v1/open", RouteOptions{Name: "open"}, count); err == nil {
		t.Error("a route without a policy was registered")
	}
	tests := []struct {
		method, path, header string
		want                 int
	}{
		{"PUT", "/v1/sites/s1", "Bearer adm", 200},
		{"PUT", "/v1/sites/s1", "bearer adm", 200},
		{"PUT", "/v1/sites/s1", "Bearer rd", 403},
		{"PUT", "/v1/sites/s1", "", 401},
		{"PUT", "/v1/sites/s1", "Bearer nope", 401},
		{"PUT", "/v1/sites/s1", "Basic YWRt", 401},
		{"GET", "/v1/sites/s1", "", 200},
		{"GET", "/v1/sites/s1", "Bearer a1", 200},
		{"GET", "/v1/sites/s1", "Bearer nope", 401},
		{"GET", "/v1/fleet", "Bearer rd", 200},
		{"GET", "/v1/fleet", "Bearer adm", 200},
		{"GET", "/v1/fleet", "Bearer a1", 403},
		{"POST", "/v1/appliances/a1/heartbeat", "Bearer a1", 200},
		{"POST", "/v1/appliances/a2/heartbeat", "Bearer a1", 403},
		{"POST", "/v1/appliances/a1/heartbeat", "Bearer node", 403},
		{"POST", "/internal/apply", "Bearer node", 200},
		{"POST", "/internal/apply", "Bearer a1", 403},
	}
	for _, tt := range tests {
		before := called.Load()
		h := http.Header{}
		if tt.header != "" {
			h.Set("Authorization", tt.header)
		}
		got := tg.do(t, tt.method, tt.path, h, "")
		ran := called.Load() != before
		if got.status != tt.want || ran != (tt.want == 200) {
			t.Errorf("%s %s with %q: %d (endpoint ran: %v), want %d", tt.method, tt.path, tt.header, got.status, ran, tt.want)
		}
		switch tt.want {
		case 401:
			if got.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", tt.method, tt.path)
			}
		case 403:
			if !strings.Contains(got.body, `"error":"forbidden"`) {
				t.Errorf("%s %s: 403 body %s, want only forbidden", tt.method, tt.path, got.body)
			}
		}
	}
	if got := tg.do(t, "PUT", "/v1/sites/s1", http.Header{"Authorization": {"Bearer adm"}}, ""); got.body != "operator:k0(admin)" {
		t.Errorf("endpoint saw principal %q", got.body)
	}
	if n := metricValue(t, tg.reg, "fillcast_api_denied_total", map[string]string{"route": "fleet", "reason": "not_allowed"}); n != 1 {
		t.Errorf("denied counter for fleet = %v, want 1", n)
	}
	logged := false
	for _, l := range tg.log.lines(t) {
		logged = logged || l["detail"] == "appliance:a1 may not call fleet"
	}
	if !logged {
		t.Error("the reason of the 403 is not in the log")
	}
	infos := tg.Routes()
	if len(infos) != 5 || infos[0].Name != "put_site" || infos[0].Policy != auth.AdminOnly {
		t.Errorf("Routes() = %+v", infos)
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		order []string
	)
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, s)
	}
	tg := newTestGateway(t, Config{
		Inbound: []InboundFilter{InboundFunc(func(rc *RequestContext, r *http.Request) error {
			note("global-in")
			if r.URL.Query().Get("limit") == "hit" {
				return &Error{Status: http.StatusTooManyRequests, Message: "rate limited", RetryAfter: 3 * time.Second}
			}
			return nil
		})},
		Outbound: []OutboundFilter{OutboundFunc(func(rc *RequestContext, h http.Header) {
			note("global-out")
			h.Set("X-Status-Seen", fmt.Sprint(rc.Status()))
			h.Set("X-Route-Seen", rc.Route())
		})},
	})
	tg.handle(t, "GET /f", RouteOptions{
		Name: "f",
		Inbound: []InboundFilter{InboundFunc(func(rc *RequestContext, r *http.Request) error {
			note("route-in")
			return nil
		})},
		Outbound: []OutboundFilter{OutboundFunc(func(rc *RequestContext, h http.Header) {
			note("route-out")
		})},
	}, func(w http.ResponseWriter, r *http.Request) error {
		note("endpoint")
		return Errorf(http.StatusConflict, "busy")
	})
	tests := []struct {
		path       string
		wantStatus int
		wantOrder  string
		wantRoute  string
	}{
		{"/f", 409, "global-in route-in endpoint global-out route-out", "f"},
		{"/f?limit=hit", 429, "global-in global-out route-out", "f"},
		{"/missing", 404, "global-out", "unmatched"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			mu.Lock()
			order = nil
			mu.Unlock()
			got := tg.do(t, "GET", tt.path, nil, "")
			mu.Lock()
			defer mu.Unlock()
			if got.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", got.status, tt.wantStatus)
			}
			if g := strings.Join(order, " "); g != tt.wantOrder {
				t.Errorf("order = %q, want %q", g, tt.wantOrder)
			}
			if g := got.header.Get("X-Status-Seen"); g != fmt.Sprint(tt.wantStatus) {
				t.Errorf("outbound saw status %s, want %d", g, tt.wantStatus)
			}
			if g := got.header.Get("X-Route-Seen"); g != tt.wantRoute {
				t.Errorf("outbound saw route %q, want %q", g, tt.wantRoute)
			}
		})
	}
}

func TestHandleRefuses(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{})
	tg.handle(t, "GET /v1/a", RouteOptions{Name: "a"}, text("a"))
	tests := []struct {
		name, pattern string
		opts          RouteOptions
		h             HandlerFunc
	}{
		{"no method", "/v1/b", RouteOptions{Name: "b"}, text("b")},
		{"lower-case method", "get /v1/b", RouteOptions{Name: "b"}, text("b")},
		{"no name", "GET /v1/b", RouteOptions{}, text("b")},
		{"bad name", "GET /v1/b", RouteOptions{Name: "b-c"}, text("b")},
		{"duplicate name", "GET /v1/b", RouteOptions{Name: "a"}, text("b")},
		{"conflicting pattern", "GET /v1/a", RouteOptions{Name: "a2"}, text("b")},
		{"malformed pattern", "GET /v1/{", RouteOptions{Name: "b"}, text("b")},
		{"nil handler", "GET /v1/b", RouteOptions{Name: "b"}, nil},
		{"negative timeout", "GET /v1/b", RouteOptions{Name: "b", Timeout: -1}, text("b")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tg.Handle(tt.pattern, tt.opts, tt.h)
			if err == nil || !strings.HasPrefix(err.Error(), "gateway: ") {
				t.Errorf("Handle(%q, %+v) = %v, want a gateway: error", tt.pattern, tt.opts.Name, err)
			}
		})
	}
}
