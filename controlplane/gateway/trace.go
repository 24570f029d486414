package gateway

import (
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing. Every request carries a valid W3C trace context: the incoming
// traceparent's trace id (or a new one) with a span id of its own, in its
// context (trace.SpanContextFromContext), in the traceparent response
// header and in the access log's trace_id. With Deps.Tracer set, each
// routed request is also a server span named after its route; a tracer
// that makes no span (a no-op one) leaves the gateway's own span context in
// place. Requests no route took get no span.

// traceparentKey is the header as net/http canonicalizes it.
const traceparentKey = "Traceparent"

// localSpan is the non-recording span that puts the request's span
// context in its context without a tracer. It lives in the request's one
// allocation, so that costs nothing more than the context holding it.
type localSpan struct {
	noop.Span
	rc *RequestContext
}

// SpanContext returns the request's span context.
func (s *localSpan) SpanContext() trace.SpanContext { return s.rc.sc }

// headerCarrier reads the trace headers straight from their canonical
// keys, sparing the propagator's lower-case lookups a canonicalization.
type headerCarrier http.Header

// Get returns the first value of the header key.
func (h headerCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		key = traceparentKey
	case "tracestate":
		key = "Tracestate"
	default:
		return http.Header(h).Get(key)
	}
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set sets the header key.
func (h headerCarrier) Set(key, value string) { http.Header(h).Set(key, value) }

// Keys lists the header's keys.
func (h headerCarrier) Keys() []string { return propagation.HeaderCarrier(h).Keys() }

var _ propagation.TextMapCarrier = headerCarrier(nil)

// startTrace gives rc its span context, from r's traceparent if valid,
// and sets the traceparent response header.
func (g *Gateway) startTrace(rc *RequestContext, r *http.Request, h http.Header) {
	base := r.Context()
	var remote trace.SpanContext
	if len(r.Header[traceparentKey]) > 0 {
		ctx := propagation.TraceContext{}.Extract(base, headerCarrier(r.Header))
		remote = trace.SpanContextFromContext(ctx)
		if g.tracer != nil {
			base = ctx // the tracer's span is the caller's child
		}
	}
	rc.local.rc = rc
	rc.setSpanContext(g.ids.spanContext(remote), h)
	if g.tracer == nil {
		base = trace.ContextWithSpan(base, &rc.local)
	}
	rc.Context = base
}

// setSpanContext makes sc the request's and answers it as traceparent.
func (rc *RequestContext) setSpanContext(sc trace.SpanContext, h http.Header) {
	rc.sc = sc
	rc.traceparent = formatTraceparent(sc)
	rc.tpHdr[0] = rc.traceparent
	h[traceparentKey] = rc.tpHdr[:]
}

// startSpan starts the route's server span when the gateway has a
// Tracer, before anything of the route runs.
func (rt *route) startSpan(rc *RequestContext, r *http.Request) {
	opts := rt.spanOpts
	if r.Method == http.MethodHead {
		opts = rt.headSpanOpts
	}
	ctx, span := rt.g.tracer.Start(rc.Context, rt.pattern, opts...)
	rc.span = span
	if sc := span.SpanContext(); sc.IsValid() && !sc.IsRemote() {
		rc.Context = ctx
		rc.setSpanContext(sc, rc.rw.w.Header())
		return
	}
	// A no-op tracer: keep the gateway's span context.
	rc.Context = trace.ContextWithSpan(rc.Context, &rc.local)
}

// spanOptions are the start options of a route's spans for method.
func spanOptions(method, pattern, name string) []trace.SpanStartOption {
	_, path, _ := strings.Cut(pattern, " ")
	return []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", method),
			attribute.String("http.route", path),
			attribute.String("fillcast.route", name),
		),
	}
}

// endSpan ends the request's span, if it has one, with its status.
func (rc *RequestContext) endSpan(status int) {
	span := rc.span
	if span == nil {
		return
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// formatTraceparent renders sc as a version 00 traceparent header.
func formatTraceparent(sc trace.SpanContext) string {
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	return string(b[:])
}

// Golden-ratio increment of splitmix64 (Steele, Lea and Flood, 2014).
const golden uint64 = 0x9e3779b97f4a7c15

// mix is splitmix64's finalizer, a bijection of uint64.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// spanContext returns the span context of the next request: remote's
// trace (id, flags, state) when it is valid, else a new sampled trace,
// and a new span id. Ids come from splitmix64 over a counter from the
// generator's random seed: distinct for 2^64 requests, unpredictable
// across processes, and far cheaper than reading randomness each time.
func (g *idGenerator) spanContext(remote trace.SpanContext) trace.SpanContext {
	// Three splitmix64 steps per request, so that no two outputs, of
	// one request or of two, share an input.
	k := 3 * g.spans.Add(1)
	x1 := g.seed[0] + k*golden
	x2 := x1 + golden
	x3 := x2 + golden
	var cfg trace.SpanContextConfig
	if remote.IsValid() {
		cfg.TraceID, cfg.TraceFlags, cfg.TraceState = remote.TraceID(), remote.TraceFlags(), remote.TraceState()
	} else {
		binary.BigEndian.PutUint64(cfg.TraceID[:8], mix(x1))
		binary.BigEndian.PutUint64(cfg.TraceID[8:], mix(x2)^g.seed[1])
		cfg.TraceFlags = trace.FlagsSampled
		if !cfg.TraceID.IsValid() { // all zeros: once in 2^128
			cfg.TraceID[15] = 1
		}
	}
	sid := mix(x3)
	if sid == 0 {
		sid = 1
	}
	binary.BigEndian.PutUint64(cfg.SpanID[:], sid)
	return trace.NewSpanContext(cfg)
}
