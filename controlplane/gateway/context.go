package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/gateway/adaptive"
	"go.opentelemetry.io/otel/trace"
)

// RequestContext is what the chain knows about one request. It is also the
// request's context.Context (r.Context() of every filter and endpoint, or a
// parent of it), so FromContext finds it anywhere below the gateway.
type RequestContext struct {
	context.Context
	id     string
	route  *route
	start  time.Time
	client netip.Addr
	// principal is who made the request, once the policy check found it.
	principal auth.Principal
	rw        *responseWriter
	err       error // the error that decided the response, for the log
	// fallback says the route's fallback answered.
	fallback bool

	// The request's trace: its span context, rendered as a traceparent
	// once (and held for the response header), the tracer's span if any,
	// and the non-recording span that carries sc without a tracer.
	sc          trace.SpanContext
	traceparent string
	tpHdr       [1]string
	span        trace.Span
	local       localSpan

	// token is the request's slot of the node's concurrency limit, held
	// when admitted; ran says the endpoint was called, so that the
	// request's latency is a sample of the node's load.
	token    adaptive.Token
	admitted bool
	ran      bool
}

type ctxKey struct{}

// Value returns the RequestContext itself for the gateway's key and
// delegates every other key to the parent context.
func (rc *RequestContext) Value(key any) any {
	if key == (ctxKey{}) {
		return rc
	}
	return rc.Context.Value(key)
}

// ID returns the request id, the incoming X-Request-Id when valid or one
// the gateway generated; it is echoed in the response and error bodies.
func (rc *RequestContext) ID() string { return rc.id }

// Route returns the name of the matched route, or "unmatched".
func (rc *RequestContext) Route() string {
	if rc.route == nil {
		return unmatchedRoute
	}
	return rc.route.name
}

// TraceID returns the request's W3C trace id, 32 lower-case hex digits:
// the incoming traceparent's, or a new one.
func (rc *RequestContext) TraceID() string { return rc.traceparent[3:35] }

// Traceparent returns the request's W3C traceparent (version 00): its
// trace id and its own span id, for the calls it makes and the URLs it
// hands out, so that their logs join the request's trace.
func (rc *RequestContext) Traceparent() string { return rc.traceparent }

// SpanContext returns the request's span context, the one in its context
// (trace.SpanContextFromContext): the tracer's span, or the gateway's own.
func (rc *RequestContext) SpanContext() trace.SpanContext { return rc.sc }

// Start returns when the gateway received the request.
func (rc *RequestContext) Start() time.Time { return rc.start }

// Client returns the client's address: the peer's, or taken from
// X-Forwarded-For when the peer is a trusted proxy. It is the zero Addr
// when the peer address cannot be parsed.
func (rc *RequestContext) Client() netip.Addr { return rc.client }

// Status returns the response status once the header is being written, and
// 0 before. Like Header it is for filters, which run on the request's
// goroutine; an endpoint of a timed route runs on another.
func (rc *RequestContext) Status() int { return rc.rw.status }

// Header returns the response header, for filters that add to it.
// Endpoints use their ResponseWriter instead: on a timed route the endpoint
// writes into a buffer, and this header may already be on its way out.
func (rc *RequestContext) Header() http.Header { return rc.rw.w.Header() }

// FromContext returns the RequestContext of the request ctx belongs to, or
// nil outside the gateway.
func FromContext(ctx context.Context) *RequestContext {
	if rc, ok := ctx.(*RequestContext); ok {
		return rc
	}
	rc, _ := ctx.Value(ctxKey{}).(*RequestContext)
	return rc
}

// RequestID returns the id of the request ctx belongs to, or "" outside
// the gateway; endpoints add it to their own log lines.
func RequestID(ctx context.Context) string {
	if rc := FromContext(ctx); rc != nil {
		return rc.id
	}
	return ""
}
