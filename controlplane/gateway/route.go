package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/controlplane/protect"
	"go.opentelemetry.io/otel/trace"
)

// route is one registered endpoint with its protections. The ServeMux
// calls it with the Gateway's responseWriter.
type route struct {
	g        *Gateway
	name     string
	pattern  string
	opts     RouteOptions
	h        HandlerFunc
	m        *routeMetrics
	authz    *authorize // nil without an Authenticator
	inbound  []InboundFilter
	outbound []OutboundFilter
	maxBody  int64   // 0 or less: no limit
	share    float64 // of the node's concurrency limit; 0 for critical
	maxConc  int64   // bulkhead size; 0: none
	active   atomic.Int64
	br       *protect.Breaker

	// Start options of the route's spans, for its method and for HEAD;
	// nil without a Tracer.
	spanOpts, headSpanOpts []trace.SpanStartOption
}

// ServeHTTP is called by the Gateway's ServeMux only.
func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := w.(*responseWriter)
	rc := rw.rc
	rc.route, rw.routed, rw.outbound = rt, true, rt.outbound
	rt.m.inFlight.Inc()
	if rt.g.tracer != nil {
		rt.startSpan(rc, r)
	}
	if err := rt.serve(rw, r); err != nil {
		rt.g.writeError(rw, r, err)
	}
}

func (rt *route) serve(rw *responseWriter, r *http.Request) error {
	g, rc := rt.g, rw.rc
	if rt.opts.Timeout > 0 && r.Body != nil && r.Body != http.NoBody {
		// First, so that the server's draining of a refused request's
		// body is bounded too.
		rt.boundBody(rw, r)
	}
	if g.statics != nil && rt.static(rw, r) {
		return nil
	}
	if err := rt.admit(rc); err != nil {
		return err
	}
	if rt.authz != nil {
		if err := rt.authz.Inbound(rc, r); err != nil {
			return err
		}
	}
	if g.rate != nil && rt.opts.Priority != PriorityCritical {
		if err := rt.rateLimit(rc); err != nil {
			return err
		}
	}
	for _, f := range rt.inbound {
		if err := f.Inbound(rc, r); err != nil {
			return err
		}
	}
	if rt.maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > rt.maxBody {
			return &http.MaxBytesError{Limit: rt.maxBody}
		}
		// MaxBytesReader tells the server's writer to close the connection
		// when the limit is hit; a buffered endpoint may read after its
		// request is over, when that writer must not be touched.
		var w http.ResponseWriter = rw.w
		if rt.opts.Timeout > 0 && !rt.opts.Streaming {
			w = nil
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
	}
	if rt.maxConc > 0 && rt.active.Add(1) > rt.maxConc {
		rt.active.Add(-1)
		rt.m.rejected[reasonBulkhead].Inc()
		return rt.fallback(rw, r, protectionError(ErrBulkheadFull, 0))
	}
	// From here the bulkhead slot is the call's to release.
	if rt.br == nil {
		rc.ran = true
		_, err := rt.call(rw, r)
		return err
	}
	done, retryAfter, ok := rt.br.Allow()
	if !ok {
		rt.release()
		rt.m.rejected[reasonCircuitOpen].Inc()
		return rt.fallback(rw, r, protectionError(ErrCircuitOpen, retryAfter))
	}
	defer done(false) // the endpoint panicked; after done below it does nothing
	rc.ran = true
	failed, err := rt.call(rw, r)
	done(!failed)
	return err
}

// release frees the bulkhead slot taken in serve.
func (rt *route) release() {
	if rt.maxConc > 0 {
		rt.active.Add(-1)
	}
}

// call runs the endpoint under the route's timeout, falls back if it
// failed, and reports whether the endpoint failed (for the breaker).
func (rt *route) call(rw *responseWriter, r *http.Request) (failed bool, err error) {
	switch {
	case rt.opts.Timeout <= 0:
		defer rt.release()
		err = rt.h(rw, r)
	case rt.opts.Streaming:
		defer rt.release()
		ctx, cancel := context.WithTimeout(r.Context(), rt.opts.Timeout)
		defer cancel()
		err = rt.timedOut(ctx, rt.h(rw, r.WithContext(ctx)))
	default:
		return rt.callBuffered(rw, r)
	}
	if rw.body.expired(rw.rc) {
		return false, rt.bodyTimeout()
	}
	rc := rw.rc
	if rc.Context.Err() != nil {
		return false, err // the client left; not the endpoint's failure
	}
	if err == nil {
		return rw.status >= 500, nil
	}
	if statusOf(err) < 500 {
		return false, err
	}
	return true, rt.fallback(rw, r, err)
}

// timedOut turns an endpoint's server error into a timeout when the
// route's deadline had passed: the endpoint most likely failed because of it.
func (rt *route) timedOut(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != context.DeadlineExceeded || statusOf(err) < 500 {
		return err
	}
	rt.m.rejected[reasonTimeout].Inc()
	e := protectionError(ErrTimeout, 0)
	e.Err = errors.Join(ErrTimeout, err)
	return e
}

// Outcomes of a timed call, decided once by compare-and-swap between the
// endpoint goroutine and the request's.
const (
	callRunning = iota
	callFinished
	callAbandoned
)

// timedCall is one run of an endpoint on its own goroutine.
type timedCall struct {
	bw    *bufferedWriter
	err   error
	state atomic.Int32
	done  chan struct{} // closed when the endpoint finished in time
}

// callBuffered runs the endpoint on a worker goroutine writing into a
// buffer, and gives up on it when the route's timeout passes.
func (rt *route) callBuffered(rw *responseWriter, r *http.Request) (failed bool, err error) {
	g, rc := rt.g, rw.rc
	ctx, cancel := context.WithTimeout(r.Context(), rt.opts.Timeout)
	defer cancel()
	c := &timedCall{bw: newBufferedWriter(g.cfg.MaxBufferBytes), done: make(chan struct{})}
	r2 := r.WithContext(ctx)
	if !g.goWorker(func() { rt.work(c, r2) }) {
		rt.release()
		c.bw.release()
		return false, Errorf(http.StatusServiceUnavailable, "the server is shutting down; try another node")
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.state.CompareAndSwap(callRunning, callAbandoned) {
			// The endpoint keeps its bulkhead slot until it returns:
			// at once if it was waiting for the body, whose reads fail
			// at this same deadline.
			if rw.body.expired(rc) {
				return false, rt.bodyTimeout()
			}
			if rc.Context.Err() != nil {
				return false, rc.Context.Err() // the client left
			}
			rt.m.rejected[reasonTimeout].Inc()
			return true, rt.fallback(rw, r, protectionError(ErrTimeout, 0))
		}
		<-c.done // finished just in time
	}
	defer c.bw.release()
	if rw.body.expired(rc) {
		return false, rt.bodyTimeout()
	}
	if rc.Context.Err() != nil {
		return false, c.err
	}
	c.err = rt.timedOut(ctx, c.err)
	if c.err != nil {
		if statusOf(c.err) < 500 {
			return false, c.err
		}
		return true, rt.fallback(rw, r, c.err)
	}
	if c.bw.overflow {
		return true, &Error{Status: http.StatusInternalServerError, Message: "internal error", Err: ErrResponseTooLarge}
	}
	c.bw.copyTo(rw, r.Method == http.MethodHead)
	return c.bw.status >= 500, nil
}

// work is the endpoint goroutine of a timed call.
func (rt *route) work(c *timedCall, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			rt.g.log.Error("panic serving request", "request_id", RequestID(r.Context()), "route", rt.name,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			c.err = fmt.Errorf("gateway: panic: %v", p)
		}
		rt.release()
		if c.state.CompareAndSwap(callRunning, callFinished) {
			close(c.done)
			return
		}
		// Late: the client already has its answer; drop ours.
		if c.err != nil && !errors.Is(c.err, context.DeadlineExceeded) && !errors.Is(c.err, context.Canceled) {
			rt.g.log.Warn("late endpoint failed", "request_id", RequestID(r.Context()), "route", rt.name, "error", c.err.Error())
		}
		c.bw.release()
	}()
	c.err = rt.h(c.bw, r)
}

// fallback answers with the route's fallback for cause, or returns cause
// for the gateway to write when there is none or it failed.
func (rt *route) fallback(rw *responseWriter, r *http.Request, cause error) error {
	fb := rt.opts.Fallback
	rc := rw.rc
	if fb == nil || rw.wroteHeader || rc.Context.Err() != nil {
		return cause
	}
	rc.err, rc.fallback = cause, true
	if err := fb(rw, r, cause); err != nil {
		if !rw.wroteHeader {
			rt.g.log.Warn("fallback failed", "request_id", rc.id, "route", rt.name, "error", err.Error())
			return cause
		}
		return err
	}
	return nil
}

// boundBody bounds the time the endpoint may spend reading r's body to
// the route's timeout, counted from now: a client trickling its body (a
// slow-body attack) must not hold the endpoint, and with it a bulkhead
// slot, past the timeout. The context's deadline cannot do that, since a
// blocked read does not watch the context: the deadline is set on the
// connection, so that a read waiting for bytes that never come fails
// too. net/http lifts it once the body is read to the end, and sets its
// own before the connection's next request.
func (rt *route) boundBody(rw *responseWriter, r *http.Request) {
	b := &deadlineBody{ReadCloser: r.Body, timeout: rt.opts.Timeout, deadline: time.Now().Add(rt.opts.Timeout)}
	// A writer that is no connection's (a test's recorder) answers
	// ErrNotSupported; only the context's deadline is left then.
	if http.NewResponseController(rw.w).SetReadDeadline(b.deadline) != nil {
		return
	}
	r.Body, rw.body = b, b
}

// bodyTimeout is the answer to a request whose body did not arrive in
// time: 408, not counted against the endpoint. It wraps ErrTimeout so
// that the gateway answers although the failed read cancelled the
// request's context, which net/http does on any read error and which
// otherwise means that the client left.
func (rt *route) bodyTimeout() error {
	rt.m.rejected[reasonTimeout].Inc()
	return &Error{Status: http.StatusRequestTimeout, Err: ErrTimeout,
		Message: fmt.Sprintf("the request body did not arrive within %v; send it faster or in smaller requests", rt.opts.Timeout)}
}

// deadlineBody is a request body under a connection read deadline (see
// boundBody) that remembers how its reads ended, for the answer.
type deadlineBody struct {
	io.ReadCloser
	timeout  time.Duration
	deadline time.Time
	timedOut atomic.Bool // a read failed at the deadline
	eof      atomic.Bool // read to the end
}

// Read reads from the body, saying which deadline a timeout was.
func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.eof.Store(true)
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut.Store(true)
		err = fmt.Errorf("gateway: request body not received within the route's timeout of %v: %w", b.timeout, err)
	}
	return n, err
}

// expired reports whether the body did not arrive by its deadline: a
// read failed at it, or (the endpoint's goroutine may not have seen its
// read fail yet) the request's context was cancelled, as a failed read
// does, once the deadline had passed with the body unfinished. b may be
// nil: no body, or no timeout.
func (b *deadlineBody) expired(rc *RequestContext) bool {
	if b == nil {
		return false
	}
	return b.timedOut.Load() || rc.Context.Err() != nil && !b.eof.Load() && !time.Now().Before(b.deadline)
}
