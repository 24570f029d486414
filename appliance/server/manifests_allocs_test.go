//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package server

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/valyala/fasthttp"
)

// TestHitPathAllocsWithSteering: with manifests advertising content
// steering, a segment's memory hit still allocates nothing, for a token
// with limits or without.
func TestHitPathAllocsWithSteering(t *testing.T) {
	s, path := newTestServerWith(t, Config{SteeringURL: "https://cp.example", TLS: true})
	limited := testKeys(t).SignPathLimited("t2", time.Now().Add(time.Hour), netip.Prefix{}, auth.Limits{MaxHeight: 1080}) + "/720p/seg-00001.m4s"
	for _, p := range []string{path, limited} {
		var ctx fasthttp.RequestCtx
		request(&ctx, p)
		s.Handle(&ctx) // warm header buffers and the verifier's cache
		if ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) != len(body) {
			t.Fatalf("%s: status %d, %d bytes", p, ctx.Response.StatusCode(), len(ctx.Response.Body()))
		}
		if n := testing.AllocsPerRun(200, func() { request(&ctx, p); s.Handle(&ctx) }); n != 0 {
			t.Errorf("%s: memory hit allocates %v times per request with steering on, want 0", p, n)
		}
	}
}
