package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace/noop"
)

// discardWriter is the cheapest possible http.ResponseWriter, so that a
// benchmark measures the chain and not a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

var playbackBody = []byte(`{"title":"t1","protocol":"hls","urls":["http://a/c/x/t1/master.m3u8"]}`)

// allowAll is a rate limiter that counts and admits everything: the cost
// of the hook itself.
type allowAll struct{ n atomic.Int64 }

func (a *allowAll) Allow(string, auth.Principal, netip.Addr, time.Time) (time.Duration, bool) {
	a.n.Add(1)
	return 0, true
}

// benchOpts choose what a benchmark gateway has besides its defaults
// (the adaptive concurrency limit).
type benchOpts struct {
	log     bool          // access log, JSON to io.Discard
	timeout time.Duration // route timeout
	tracer  bool          // a no-op tracer (the API without an SDK)
	off     bool          // no concurrency limit, rate limiter or breaker
	// noBreaker leaves the breaker out only.
	noBreaker bool
}

// benchGateway has a playback-like route with every protection on: the
// adaptive concurrency limit, a rate limiter hook, a bulkhead and a
// circuit breaker.
func benchGateway(b testing.TB, o benchOpts) *Gateway {
	cfg := DefaultConfig()
	cfg.NoAccessLog = !o.log
	cfg.Concurrency.Off = o.off
	deps := Deps{
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(),
	}
	if !o.off {
		deps.RateLimiter = &allowAll{}
	}
	if o.tracer {
		deps.Tracer = noop.NewTracerProvider().Tracer("bench")
	}
	g, err := New(cfg, deps)
	if err != nil {
		b.Fatal(err)
	}
	opts := RouteOptions{Name: "playback", Priority: PriorityPlayback, Timeout: o.timeout, MaxConcurrent: 10000}
	if !o.off && !o.noBreaker {
		bc := protect.DefaultBreakerConfig()
		opts.Breaker = &bc
	}
	err = g.Handle("GET /v1/playback/{title}", opts, func(w http.ResponseWriter, r *http.Request) error {
		if r.PathValue("title") == "" {
			return Errorf(http.StatusNotFound, "no title")
		}
		w.Header()["Content-Type"] = []string{"application/json"}
		_, err := w.Write(playbackBody)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

func serveOnce(g *Gateway, w *discardWriter, r *http.Request) {
	clear(w.h)
	w.status = 0
	g.ServeHTTP(w, r)
}

// chainCases are the variants BenchmarkChain and BenchmarkChainLatency
// run; "full" has everything on but the access log and a tracer.
var chainCases = []struct {
	name        string
	o           benchOpts
	traceparent bool // the request carries one
}{
	{"off", benchOpts{off: true}, false},
	{"full", benchOpts{}, false},
	{"full+log", benchOpts{log: true}, false},
	{"full+log+tracer", benchOpts{log: true, tracer: true}, true},
	{"full+log+timeout", benchOpts{log: true, timeout: time.Second}, false},
}

func chainRequest(traceparent bool) *http.Request {
	r := httptest.NewRequest("GET", "/v1/playback/t1", nil)
	if traceparent {
		r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	}
	return r
}

// BenchmarkChain is one request through the whole chain in process:
// request id, trace context, client address, mux, static lookup, the
// adaptive concurrency limit, rate limiter, bulkhead, breaker, endpoint,
// outbound, metrics and (in the +log cases) the access log; "off" has no
// concurrency limit, rate limiter or breaker.
func BenchmarkChain(b *testing.B) {
	for _, bc := range chainCases {
		b.Run(bc.name, func(b *testing.B) {
			g := benchGateway(b, bc.o)
			r := chainRequest(bc.traceparent)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				serveOnce(g, w, r)
			}
			if w.status != 200 {
				b.Fatalf("status %d", w.status)
			}
		})
	}
}

// BenchmarkChainLatency times every request of BenchmarkChain's cases and
// reports the median and 99th percentile (ns/op also counts the two clock
// reads per request).
func BenchmarkChainLatency(b *testing.B) {
	for _, bc := range chainCases {
		b.Run(bc.name, func(b *testing.B) {
			g := benchGateway(b, bc.o)
			r := chainRequest(bc.traceparent)
			w := &discardWriter{h: http.Header{}}
			var hist [1000]int64 // 100 ns buckets up to 100 µs
			n := int64(0)
			for b.Loop() {
				start := time.Now()
				serveOnce(g, w, r)
				hist[min(int(time.Since(start)/(100*time.Nanosecond)), len(hist)-1)]++
				n++
			}
			quantile := func(q float64) float64 {
				seen := int64(0)
				for i, c := range hist {
					if seen += c; float64(seen) >= q*float64(n) {
						return float64(i+1) * 100
					}
				}
				return float64(len(hist)) * 100
			}
			b.ReportMetric(quantile(0.5), "p50-ns")
			b.ReportMetric(quantile(0.99), "p99-ns")
		})
	}
}

// BenchmarkLoopback is the same route behind a real net/http server on
// loopback, with keep-alive clients in parallel, next to a bare ServeMux
// for comparison; client and server share the machine's cores, so req/s is
// a floor for the server alone.
func BenchmarkLoopback(b *testing.B) {
	bare := http.NewServeMux()
	bare.HandleFunc("GET /v1/playback/{title}", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Write(playbackBody)
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare_mux", bare},
		{"gateway", benchGateway(b, benchOpts{log: true})},
		{"gateway+tracer", benchGateway(b, benchOpts{log: true, tracer: true})},
		{"gateway+timeout", benchGateway(b, benchOpts{log: true, timeout: time.Second})},
	} {
		b.Run(bc.name, func(b *testing.B) { loopback(b, bc.h) })
	}
}

func loopback(b *testing.B, h http.Handler) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := srv.URL + "/v1/playback/t1"
	b.ReportAllocs()
	b.SetParallelism(8)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
