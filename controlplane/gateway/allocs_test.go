//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestChainAllocs keeps the hot path honest: a trivial route through the
// whole chain with every protection but a timeout, without the access log,
// allocates only the request's context and writer (one object), its copy
// of the request, the generated request id and the mux's path-value slice;
// the endpoint adds one for its Content-Type header.
func TestChainAllocs(t *testing.T) {
	g := benchGateway(t, false, 0)
	r := httptest.NewRequest("GET", "/v1/playback/t1", nil)
	w := &discardWriter{h: http.Header{}}
	got := testing.AllocsPerRun(1000, func() { serveOnce(g, w, r) })
	const want = 5
	if got > want {
		t.Errorf("allocations per request = %v, want at most %d", got, want)
	}
}
