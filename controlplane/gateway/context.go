package gateway

import (
	"context"

	"net/http"
	"net/netip"
	"time"

	"github.com/fillcast/fillcast/auth"
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
