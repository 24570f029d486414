// Package gateway is the control plane's HTTP API front: a chain of filters
// in the manner of Netflix Zuul (inbound filters, then the endpoint, then
// outbound filters) with the Hystrix protections per route (timeout,
// bulkhead, circuit breaker, fallback) and node-wide load shedding.
//
// A Gateway is an http.Handler. API handlers register routes on it with a
// net/http ServeMux pattern, a name for metrics and logs, and RouteOptions;
// the gateway then gives every request an id (X-Request-Id), resolves the
// client address (X-Forwarded-For only from trusted proxies), recovers
// panics, writes a structured access log and per-route Prometheus metrics,
// and turns endpoint errors into JSON bodies
// {"error": "...", "request_id": "..."}.
//
// Order of work for a routed request: an operator's static answer (see
// Deps.Statics), shedding against the node's concurrency limit by priority,
// the policy check (who may call the route), the rate limit, inbound
// filters (the gateway's, then the route's), body limit, bulkhead, circuit
// breaker, the endpoint under its timeout, and on failure the fallback.
// Outbound filters run just before whichever response goes out.
//
// The concurrency limit is adaptive by default (package adaptive, Netflix's
// Gradient2): it grows while endpoints answer at their usual latency and
// shrinks when they slow down, fed with the latency of every admitted
// non-critical request whose endpoint ran and did not fail because of the
// client; a timeout is a drop. Requests are shed against it by criticality
// along a cubic curve (see Priority): telemetry from half the limit, then
// recommendations, then browsing, playback only at the limit, and critical
// routes (health, heartbeats, the cluster's own calls) never. Shed requests
// get 503 with Retry-After.
//
// Every request also carries a W3C trace context: the incoming
// traceparent's trace id or a new one, with a span id of its own, in its
// context (trace.SpanContextFromContext, RequestContext.Traceparent), in
// the traceparent response header and in the access log's trace_id; with
// Deps.Tracer set, every routed request is also a server span named after
// its route's pattern.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/gateway/adaptive"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// unmatchedRoute names requests no route took, in metrics and logs.
const unmatchedRoute = "unmatched"

// Gateway is the API's http.Handler. Register routes with Handle, serve it
// with an http.Server, and call Close after the server has shut down.
type Gateway struct {
	cfg       Config
	authn     Authenticator
	denied    *prometheus.CounterVec
	log       *slog.Logger
	now       func() time.Time
	ids       *idGenerator
	metrics   *metrics
	mux       *http.ServeMux
	unmatched *routeMetrics
	inFlight  atomic.Int64
	limiter   *adaptive.Limiter // nil: Concurrency.Off
	rate      RateLimiter
	statics   Statics
	tracer    trace.Tracer
	breakers  *protect.Metrics

	mu     sync.Mutex
	routes map[string]bool // names taken
	infos  []RouteInfo

	// Endpoint goroutines of timed routes, including late ones whose
	// answer was already given up on; idle is closed when the last one
	// returns after Close.
	wmu     sync.Mutex
	closed  bool
	workers int
	idle    chan struct{}
}

var _ http.Handler = (*Gateway)(nil)

// New returns a Gateway without routes.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &Gateway{cfg: cfg, authn: deps.Authenticator, log: deps.Logger, now: deps.Now, mux: http.NewServeMux(), routes: map[string]bool{},
		rate: deps.RateLimiter, statics: deps.Statics, tracer: deps.Tracer, breakers: deps.Breakers}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	var err error
	if g.ids, err = newIDGenerator(deps.Rand); err != nil {
		return nil, err
	}
	if g.limiter, err = cfg.Concurrency.newLimiter(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if g.metrics, err = newMetrics(deps.Registerer, g.limiter); err != nil {
		return nil, err
	}
	if g.breakers == nil {
		if g.breakers, err = protect.NewMetrics(deps.Registerer); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	g.unmatched = g.metrics.forRoute(unmatchedRoute)
	g.denied = g.metrics.denied
	return g, nil
}

// Handle registers endpoint h for pattern, an http.ServeMux pattern that
// must start with a method, such as "GET /v1/titles/{id}". Path wildcards
// are read with r.PathValue. Each route needs a unique name.
func (g *Gateway) Handle(pattern string, opts RouteOptions, h HandlerFunc) (err error) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || strings.ToUpper(method) != method || !strings.Contains(path, "/") {
		return fmt.Errorf("gateway: pattern %q: want a method and a path, such as \"GET /v1/titles/{id}\"", pattern)
	}
	if h == nil {
		return fmt.Errorf("gateway: route %s: nil handler", opts.Name)
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	if g.authn != nil && opts.Policy == (auth.Policy{}) {
		return fmt.Errorf("gateway: route %s declares no policy: say who may call it (auth.Public, auth.AdminOnly, ...)", opts.Name)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.routes[opts.Name] {
		return fmt.Errorf("gateway: route name %s is already taken", opts.Name)
	}
	rt, err := g.newRoute(pattern, opts, h)
	if err != nil {
		return err
	}
	defer func() {
		// ServeMux panics on a malformed or conflicting pattern.
		if p := recover(); p != nil {
			rt.m.drop()
			err = fmt.Errorf("gateway: route %s: %v", opts.Name, p)
		}
	}()
	g.mux.Handle(pattern, rt)
	g.routes[opts.Name] = true
	g.infos = append(g.infos, RouteInfo{Pattern: pattern, Name: opts.Name, Policy: opts.Policy})
	return nil
}

func (g *Gateway) newRoute(pattern string, opts RouteOptions, h HandlerFunc) (*route, error) {
	method, _, _ := strings.Cut(pattern, " ")
	rt := &route{
		g:        g,
		name:     opts.Name,
		pattern:  pattern,
		opts:     opts,
		h:        h,
		m:        g.metrics.forRoute(opts.Name),
		maxBody:  opts.MaxBodyBytes,
		maxConc:  int64(opts.MaxConcurrent),
		share:    opts.Priority.share(),
		inbound:  append(append([]InboundFilter(nil), g.cfg.Inbound...), opts.Inbound...),
		outbound: append(append([]OutboundFilter(nil), g.cfg.Outbound...), opts.Outbound...),
	}
	if rt.maxBody == 0 {
		rt.maxBody = g.cfg.MaxBodyBytes
	}
	if g.authn != nil {
		rt.authz = &authorize{authn: g.authn, policy: opts.Policy, g: g}
	}
	if g.tracer != nil {
		rt.spanOpts = spanOptions(method, pattern, opts.Name)
		rt.headSpanOpts = spanOptions(http.MethodHead, pattern, opts.Name)
	}
	if opts.Breaker != nil {
		br, err := protect.NewBreaker("route_"+opts.Name, *opts.Breaker, g.breakers, g.log)
		if err != nil {
			return nil, fmt.Errorf("gateway: route %s: %w", opts.Name, err)
		}
		rt.br = br
	}
	return rt, nil
}

// ServeHTTP runs the chain for one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// One allocation holds the request's context and writer: the context
	// may outlive the request (an endpoint may keep it), so neither is pooled.
	ex := &struct {
		rc    RequestContext
		rw    responseWriter
		idHdr [1]string
	}{}
	rc, rw := &ex.rc, &ex.rw
	rc.rw, rc.start = rw, g.now()
	rc.client = clientAddr(r.RemoteAddr, r.Header["X-Forwarded-For"], g.cfg.TrustedProxies)
	if id := r.Header.Get("X-Request-Id"); validRequestID(id) {
		rc.id = id
	} else {
		rc.id = g.ids.next()
	}
	rw.w, rw.rc, rw.outbound = w, rc, g.cfg.Outbound
	ex.idHdr[0] = rc.id
	h := w.Header()
	h["X-Request-Id"] = ex.idHdr[:]
	g.startTrace(rc, r, h)
	g.inFlight.Add(1)
	defer g.finish(rc, r)
	g.mux.ServeHTTP(rw, r.WithContext(rc))
}

// finish recovers a panic, makes sure a response went out, and writes the
// access log and metrics. It runs deferred, once per request.
func (g *Gateway) finish(rc *RequestContext, r *http.Request) {
	p := recover()
	rw := rc.rw
	if p != nil && p != http.ErrAbortHandler {
		g.log.Error("panic serving request", "request_id", rc.id, "route", rc.Route(),
			"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		if rw.wroteHeader {
			// The response had begun: cut the connection rather than let
			// a truncated body look complete.
			rc.err, rw.status = fmt.Errorf("gateway: panic: %v", p), http.StatusInternalServerError
			p = http.ErrAbortHandler
		} else {
			g.writeError(rw, r, fmt.Errorf("gateway: panic: %v", p))
			p = nil
		}
	}
	if !rw.wroteHeader {
		if p == nil {
			rw.WriteHeader(http.StatusOK)
		} else { // aborted before any answer
			rw.status = http.StatusInternalServerError
		}
	}
	g.inFlight.Add(-1)
	now := g.now()
	d := now.Sub(rc.start)
	g.release(rc, d, now)
	rc.endSpan(rw.status)
	rm := g.unmatched
	if rc.route != nil {
		rm = rc.route.m
		rm.inFlight.Dec()
	}
	rm.code(rw.status).Inc()
	rm.duration.Observe(d.Seconds())
	if !g.cfg.NoAccessLog {
		g.accessLog(rc, r, d)
	}
	if p != nil {
		panic(p)
	}
}

func (g *Gateway) accessLog(rc *RequestContext, r *http.Request, d time.Duration) {
	level := slog.LevelInfo
	if rc.rw.status >= 500 {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !g.log.Enabled(ctx, level) {
		return
	}
	attrs := [...]slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", rc.Route()),
		slog.String("path", r.URL.Path),
		slog.Int("status", rc.rw.status),
		slog.Int64("bytes", rc.rw.bytes),
		slog.Duration("duration", d),
		slog.String("request_id", rc.id),
		slog.String("trace_id", rc.TraceID()),
		slog.String("client", rc.client.String()),
		{}, {},
	}
	n := len(attrs) - 2
	if rc.err != nil {
		attrs[n] = slog.String("error", rc.err.Error())
		n++
	}
	if rc.fallback {
		attrs[n] = slog.Bool("fallback", true)
		n++
	}
	g.log.LogAttrs(ctx, level, "request", attrs[:n]...)
}

// InFlight returns how many requests are in progress on the node, critical
// ones included.
func (g *Gateway) InFlight() int { return int(g.inFlight.Load()) }

// goWorker runs f on a goroutine that Close waits for. It reports false,
// without running f, once Close has begun.
func (g *Gateway) goWorker(f func()) bool {
	g.wmu.Lock()
	if g.closed {
		g.wmu.Unlock()
		return false
	}
	g.workers++
	g.wmu.Unlock()
	go func() {
		defer g.workerDone()
		f()
	}()
	return true
}

func (g *Gateway) workerDone() {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.workers--
	if g.workers == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// Close waits until ctx ends for the endpoint goroutines of timed routes
// to return, including those whose answer was given up on after a timeout.
// Call it after http.Server.Shutdown; timed routes answer 503 to requests
// that arrive later. It is safe to call more than once.
func (g *Gateway) Close(ctx context.Context) error {
	g.wmu.Lock()
	g.closed = true
	if g.workers == 0 {
		g.wmu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.wmu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway: close: endpoints still running: %w", ctx.Err())
	}
}
