package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fillcast/fillcast/controlplane/protect"
)

// Errors the gateway's protections produce. A FallbackFunc receives them
// wrapped in an *Error; test with errors.Is.
var (
	// ErrTimeout: the endpoint did not answer within the route's Timeout.
	ErrTimeout = errors.New("gateway: endpoint timed out")
	// ErrBulkheadFull: the route already had MaxConcurrent requests.
	ErrBulkheadFull = errors.New("gateway: too many concurrent requests on this route")
	// ErrCircuitOpen: the route's circuit breaker is open.
	ErrCircuitOpen = errors.New("gateway: circuit open")
	// ErrShed: the node is overloaded and shed the request.
	ErrShed = errors.New("gateway: overloaded")
	// ErrResponseTooLarge: a buffered endpoint wrote more than
	// Config.MaxBufferBytes.
	ErrResponseTooLarge = errors.New("gateway: response larger than the buffer; mark the route Streaming")
)

// statusClientClosed is logged and counted when the client went away
// before the answer; nothing reaches the client.
const statusClientClosed = 499

// Error is an error with the HTTP status and message the client should see.
// Endpoints and filters return it; the body is
// {"error": Message, "request_id": "..."}.
type Error struct {
	// Status is the HTTP status, 400 to 599.
	Status int
	// Message is shown to the client; say what was wrong and what to do.
	Message string
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration
	// Err is the cause, logged but not shown.
	Err error
}

// Errorf returns an *Error with the status and a formatted message.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Error returns the status, message and cause.
func (e *Error) Error() string {
	s := strconv.Itoa(e.Status) + " " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// protectionError wraps one of the gateway's sentinels with its status.
func protectionError(sentinel error, retryAfter time.Duration) *Error {
	e := &Error{Status: http.StatusServiceUnavailable, RetryAfter: retryAfter, Err: sentinel}
	switch sentinel {
	case ErrTimeout:
		e.Status, e.Message = http.StatusGatewayTimeout, "the request took too long; try again"
	case ErrBulkheadFull:
		e.Message = "too many requests on this route; try again shortly"
	case ErrCircuitOpen:
		e.Message = "this route is failing and temporarily disabled; try again shortly"
	case ErrShed:
		e.Message = "the server is overloaded; try again shortly"
	default:
		e.Status, e.Message = http.StatusInternalServerError, "internal error"
	}
	return e
}

// describe maps err to the status and message the client sees.
func describe(err error) (status int, msg string, retryAfter time.Duration) {
	var e *Error
	var mbe *http.MaxBytesError
	var open *protect.OpenError
	switch {
	case errors.As(err, &e) && e.Status >= 400 && e.Status <= 599:
		return e.Status, e.Message, e.RetryAfter
	case errors.As(err, &open):
		return http.StatusServiceUnavailable, "a service this request needs (" + open.Name + ") is failing and temporarily cut off; try again shortly", max(open.RetryAfter, time.Second)
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "request body larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes", 0
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "the request took too long; try again", 0
	}
	return http.StatusInternalServerError, "internal error", 0
}

// statusOf is the status describe would choose.
func statusOf(err error) int {
	s, _, _ := describe(err)
	return s
}

type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

// errorJSON renders the JSON error body.
func errorJSON(msg, requestID string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(errorBody{Error: msg, RequestID: requestID}); err != nil {
		panic(err) // two strings always encode
	}
	return b.Bytes()
}

// writeError answers with err unless the response has begun, in which case
// there is nothing left to do but log it (the access log carries rc.err).
func (g *Gateway) writeError(rw *responseWriter, r *http.Request, err error) {
	rc := rw.rc
	rc.err = err
	if rw.wroteHeader {
		return
	}
	if rc.Context.Err() != nil && !errors.Is(err, ErrTimeout) {
		// The client is gone; record why, but there is no one to tell.
		rw.status, rw.wroteHeader = statusClientClosed, true
		return
	}
	status, msg, ra := describe(err)
	h := rw.Header()
	if ra > 0 {
		h.Set("Retry-After", retrySeconds(ra))
	}
	body := errorJSON(msg, rc.id)
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(status)
	if r.Method != http.MethodHead {
		rw.Write(body)
	}
}
