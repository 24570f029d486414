//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package server

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestHitPathAllocs(t *testing.T) {
	s, path := newTestServer(t)
	var ctx fasthttp.RequestCtx
	request(&ctx, path)
	s.Handle(&ctx) // warm header buffers
	if ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) != len(body) {
		t.Fatalf("status %d, %d bytes", ctx.Response.StatusCode(), len(ctx.Response.Body()))
	}
	n := testing.AllocsPerRun(200, func() {
		request(&ctx, path)
		s.Handle(&ctx)
	})
	if n != 0 {
		t.Errorf("memory hit allocates %v times per request, want 0", n)
	}
}
