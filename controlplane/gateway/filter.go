package gateway

import "net/http"

// HandlerFunc is an endpoint. It writes a response, or returns an error that
// the gateway turns into a JSON error body: an *Error chooses the status
// and message; anything else is a 500 whose detail is logged, not shown.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// FallbackFunc answers for a route when its endpoint cannot: cause is an
// *Error wrapping ErrTimeout, ErrBulkheadFull or ErrCircuitOpen, or the
// endpoint's own error (status 500 and above). It runs in the request's
// goroutine with the request's original context, not the timed-out one.
// If it returns an error before writing, the client gets cause instead.
type FallbackFunc func(w http.ResponseWriter, r *http.Request, cause error) error

// InboundFilter runs before the endpoint. Returning a non-nil error
// short-circuits the chain: the client gets that error (see HandlerFunc)
// and neither later filters nor the endpoint run. A filter may add response
// headers through rc.Header() either way.
type InboundFilter interface {
	Inbound(rc *RequestContext, r *http.Request) error
}

// OutboundFilter runs once per response, just before its status line and
// header are sent, whoever produced it (endpoint, fallback or gateway
// error); rc.Status() is the status. It may change the header h.
type OutboundFilter interface {
	Outbound(rc *RequestContext, h http.Header)
}

// InboundFunc adapts a function to InboundFilter.
type InboundFunc func(rc *RequestContext, r *http.Request) error

// Inbound calls f.
func (f InboundFunc) Inbound(rc *RequestContext, r *http.Request) error { return f(rc, r) }

// OutboundFunc adapts a function to OutboundFilter.
type OutboundFunc func(rc *RequestContext, h http.Header)

// Outbound calls f.
func (f OutboundFunc) Outbound(rc *RequestContext, h http.Header) { f(rc, h) }

var (
	_ InboundFilter  = InboundFunc(nil)
	_ OutboundFilter = OutboundFunc(nil)
)
