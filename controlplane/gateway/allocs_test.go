//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package gateway

import (
	"net/http"
	"testing"
)

// TestChainAllocs keeps the hot path honest: a trivial route through the
// whole chain without the access log. The gateway allocates the request's
// context and writer (one object), its copy of the request, the generated
// request id, the context that carries the request's span and its
// traceparent (for the response header); the mux adds its path-value slice
// and the endpoint one for its Content-Type header. That is 7; a circuit
// breaker adds 4 (protect.Breaker.Allow's done closures and flag, and
// gobreaker's), and a no-op tracer with an incoming traceparent 2 for the
// extracted remote span context.
func TestChainAllocs(t *testing.T) {
	tests := []struct {
		name        string
		o           benchOpts
		traceparent bool
		want        float64
	}{
		{"no limit, rate limiter or breaker", benchOpts{off: true}, false, 7},
		{"everything but a breaker", benchOpts{noBreaker: true}, false, 7},
		{"everything", benchOpts{}, false, 11},
		{"everything, no-op tracer and traceparent", benchOpts{tracer: true}, true, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := benchGateway(t, tt.o)
			r := chainRequest(tt.traceparent)
			w := &discardWriter{h: http.Header{}}
			got := testing.AllocsPerRun(1000, func() { serveOnce(g, w, r) })
			t.Logf("%v allocations per request", got)
			if got > tt.want {
				t.Errorf("allocations per request = %v, want at most %v", got, tt.want)
			}
		})
	}
}
