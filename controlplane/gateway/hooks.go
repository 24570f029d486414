package gateway

import (
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/fillcast/fillcast/auth"
)

// RateLimiter decides whether a caller may make one more request to a
// route (see Deps.RateLimiter). The gateway asks it once per request of a
// non-critical route, right after the policy check found the principal:
// route is the route's name, client the client's address, and now the
// time the request arrived. When it refuses, the client gets 429 with
// Retry-After. It must be safe for concurrent use and cheap: it runs on
// every request.
type RateLimiter interface {
	Allow(route string, p auth.Principal, client netip.Addr, now time.Time) (retryAfter time.Duration, ok bool)
}

// StaticResponse is a canned answer a route gives instead of running
// (see Statics): an operator's switch to turn a feature off or point
// clients elsewhere during an incident.
type StaticResponse struct {
	// Status is the HTTP status. Zero means 200.
	Status int
	// Body is sent as it is, with Content-Type application/json.
	Body []byte
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration
}

// Statics holds the static answers in force (see Deps.Statics). The
// gateway calls Static once per routed request, right after the route is
// matched, with the route's registered pattern ("GET /v1/search"): it
// must be cheap, such as a lookup in a map behind an atomic pointer.
type Statics interface {
	Static(pattern string) (StaticResponse, bool)
}

// static answers with the route's static response, if one is in force.
func (rt *route) static(rw *responseWriter, r *http.Request) bool {
	resp, ok := rt.g.statics.Static(rt.pattern)
	if !ok {
		return false
	}
	rt.m.rejected[reasonStatic].Inc()
	h := rw.Header()
	if resp.RetryAfter > 0 {
		h.Set("Retry-After", retrySeconds(resp.RetryAfter))
	}
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	h.Set("X-Content-Type-Options", "nosniff")
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	rw.WriteHeader(status)
	if r.Method != http.MethodHead {
		rw.Write(resp.Body)
	}
	return true
}

// rateLimit asks the gateway's RateLimiter about the request: nil, or a
// 429 saying when to come back.
func (rt *route) rateLimit(rc *RequestContext) error {
	retry, ok := rt.g.rate.Allow(rt.name, rc.principal, rc.client, rc.start)
	if ok {
		return nil
	}
	rt.m.rejected[reasonRateLimited].Inc()
	secs := retrySeconds(retry)
	return &Error{Status: http.StatusTooManyRequests, Message: "rate limit exceeded: retry in " + secs + " s", RetryAfter: max(retry, time.Second)}
}

// retrySeconds renders d as a Retry-After: whole seconds, rounded up, at
// least 1.
func retrySeconds(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}
