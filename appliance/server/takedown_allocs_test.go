//go:build !race

package server

import (
	"strconv"
	"testing"

	"github.com/fillcast/fillcast/auth"
	"github.com/valyala/fasthttp"
)

// TestTakedownHitAllocs: a memory hit still allocates nothing with
// takedowns in force, for a title taken down (a token issued after) and
// for one that is not.
func TestTakedownHitAllocs(t *testing.T) {
	s, path := newTestServer(t)
	s.SetTakedowns(auth.NewTakedowns(map[string]int64{"t1": 1, "t9": 1 << 40}))
	var ctx fasthttp.RequestCtx
	request(&ctx, path)
	s.Handle(&ctx) // warm the verifier's cache
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("status %d", ctx.Response.StatusCode())
	}
	if n := testing.AllocsPerRun(200, func() { request(&ctx, path); s.Handle(&ctx) }); n != 0 {
		t.Errorf("memory hit with takedowns in force allocates %v times per request, want 0", n)
	}
}

// BenchmarkMemoryHitTakedowns is BenchmarkMemoryHit with 10,000 titles
// taken down, the requested one among them (its token issued after).
func BenchmarkMemoryHitTakedowns(b *testing.B) {
	s, path := newTestServer(b)
	until := map[string]int64{"t1": 1}
	for i := range 10_000 {
		until["x"+strconv.Itoa(i)] = 1 << 40
	}
	s.SetTakedowns(auth.NewTakedowns(until))
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		request(&ctx, path)
		s.Handle(&ctx)
	}
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("status %d", ctx.Response.StatusCode())
	}
}
