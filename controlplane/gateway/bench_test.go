package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/gateway/breaker"
	"github.com/prometheus/client_golang/prometheus"
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

// benchGateway has a playback-like route with every protection on, and an
// access log going to io.Discard through the JSON handler.
func benchGateway(b testing.TB, accessLog bool, timeout time.Duration) *Gateway {
	cfg := DefaultConfig()
	cfg.MaxInFlight = 10000
	cfg.NoAccessLog = !accessLog
	g, err := New(cfg, Deps{
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	bc := breaker.DefaultConfig()
	err = g.Handle("GET /v1/playback/{title}", RouteOptions{
		Name:          "playback",
		Timeout:       timeout,
		MaxConcurrent: 10000,
		Breaker:       &bc,
	}, func(w http.ResponseWriter, r *http.Request) error {
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

// BenchmarkChain is one request through the whole chain in process:
// request id, client address, mux, shedding check, bulkhead, breaker,
// endpoint, outbound, metrics and (in the /log cases) the access log.
func BenchmarkChain(b *testing.B) {
	for _, bc := range []struct {
		name    string
		log     bool
		timeout time.Duration
	}{
		{"nolog", false, 0},
		{"log", true, 0},
		{"log+timeout", true, time.Second},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := benchGateway(b, bc.log, bc.timeout)
			r := httptest.NewRequest("GET", "/v1/playback/t1", nil)
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
		{"gateway", benchGateway(b, true, 0)},
		{"gateway+timeout", benchGateway(b, true, time.Second)},
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
