package tracing

import (
	"context"
	"encoding/pem"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/internal/leakcheck"
	"github.com/fillcast/fillcast/internal/tracing/tracingtest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// remoteParent returns ctx holding the span context of traceparent as a
// remote parent, as an HTTP server's propagator would.
func remoteParent(t *testing.T, traceparent string) context.Context {
	t.Helper()
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	if !trace.SpanContextFromContext(ctx).IsValid() {
		t.Fatalf("traceparent %q: the propagator refuses it", traceparent)
	}
	return ctx
}

func shutdown(t *testing.T, p *Provider) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestExport: a span continuing a remote trace reaches the collector, on
// Shutdown, with that trace id, its parent and the process's resource; a
// span whose parent was not sampled does not, though the ratio is 1.
func TestExport(t *testing.T) {
	t.Parallel()
	col := tracingtest.NewCollector(t)
	p, err := New(Config{Endpoint: col.URL(), Service: "fillcast-test", Instance: "node-7"})
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Tracer("github.com/fillcast/fillcast/internal/tracing")

	const traceID = "0af7651916cd43dd8448eb211c80319c"
	_, span := tr.Start(remoteParent(t, "00-"+traceID+"-b7ad6b7169203331-01"), "fill")
	if !span.IsRecording() {
		t.Error("span under a sampled parent is not recording")
	}
	if got := span.SpanContext().TraceID().String(); got != traceID {
		t.Errorf("span trace id %s, want the parent's %s", got, traceID)
	}
	span.End()
	_, unsampled := tr.Start(remoteParent(t, "00-"+specTraceID+"-"+specParentID+"-00"), "unsampled")
	if unsampled.IsRecording() {
		t.Error("span under a parent that was not sampled is recording")
	}
	unsampled.End()

	shutdown(t, p)

	_, spans := col.Received()
	if len(spans) != 1 {
		t.Fatalf("collector got %d spans %+v, want 1 (fill)", len(spans), spans)
	}
	got := spans[0]
	for _, f := range []struct{ name, got, want string }{
		{"name", got.Name, "fill"},
		{"trace id", got.TraceID, traceID},
		{"parent span id", got.ParentSpanID, "b7ad6b7169203331"},
		{"path", got.Path, "/v1/traces"},
		{"Content-Encoding", got.Encoding, "gzip"},
		{"service.name", got.Resource["service.name"], "fillcast-test"},
		{"service.instance.id", got.Resource["service.instance.id"], "node-7"},
	} {
		if f.got != f.want {
			t.Errorf("exported span's %s = %q, want %q (span %+v)", f.name, f.got, f.want, got)
		}
	}
}

// TestEndpointPath: the exporter posts to /v1/traces unless Endpoint names
// a path.
func TestEndpointPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, suffix, want string
	}{
		{"no path", "", "/v1/traces"},
		{"root", "/", "/v1/traces"},
		{"own path", "/otlp/spans", "/otlp/spans"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			col := tracingtest.NewCollector(t)
			p, err := New(Config{Endpoint: col.URL() + tc.suffix, Service: "fillcast-test"})
			if err != nil {
				t.Fatal(err)
			}
			_, span := p.Tracer("test").Start(context.Background(), "root")
			span.End()
			shutdown(t, p)
			_, spans := col.Received()
			if len(spans) != 1 || spans[0].Path != tc.want {
				t.Errorf("collector got %+v, want one span posted to %s", spans, tc.want)
			}
		})
	}
}

// TestEnvironmentCannotRedirect: the standard variables naming an
// endpoint, TLS or a certificate change neither where and how spans go
// with an Endpoint nor that none go anywhere without one.
func TestEnvironmentCannotRedirect(t *testing.T) {
	elsewhere := tracingtest.NewCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", elsewhere.URL())
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", elsewhere.URL()+"/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "false")
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", certificateFile(t))

	col := tracingtest.NewCollector(t)
	on, err := New(Config{Endpoint: col.URL(), Service: "fillcast-test"})
	if err != nil {
		t.Fatal(err)
	}
	off, err := New(Config{Service: "fillcast-test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Provider{on, off} {
		_, span := p.Tracer("test").Start(context.Background(), "root")
		span.End()
		shutdown(t, p)
	}
	if _, spans := col.Received(); len(spans) != 1 {
		t.Errorf("configured collector got %d spans, want 1", len(spans))
	}
	if n, spans := elsewhere.Received(); n != 0 {
		t.Errorf("collector named by the environment got %d requests (%+v), want none", n, spans)
	}
}

// certificateFile writes a real CA certificate, PEM-encoded, and returns
// its path.
func certificateFile(t *testing.T) string {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNoEndpoint: without an Endpoint spans record nothing and nothing is
// sent, but a remote parent's span context is carried along.
func TestNoEndpoint(t *testing.T) {
	t.Parallel()
	p, err := New(Config{Service: "fillcast-test"})
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Tracer("test")
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	ctx, span := tr.Start(remoteParent(t, "00-"+traceID+"-b7ad6b7169203331-01"), "fill")
	if span.IsRecording() {
		t.Error("span of a provider without endpoint is recording")
	}
	if got := trace.SpanContextFromContext(ctx).TraceID().String(); got != traceID {
		t.Errorf("trace id in the span's context %s, want the parent's %s", got, traceID)
	}
	span.End()
	_, root := tr.Start(context.Background(), "root")
	if root.IsRecording() || root.SpanContext().IsValid() {
		t.Errorf("root span of a provider without endpoint: recording %v, valid span context %v; want neither",
			root.IsRecording(), root.SpanContext().IsValid())
	}
	root.End()
	shutdown(t, p)
	shutdown(t, p)
}

// TestNoExportWithoutSpans: New and Shutdown alone send nothing, with or
// without a Tracer, and a second Shutdown does nothing.
func TestNoExportWithoutSpans(t *testing.T) {
	t.Parallel()
	for _, tracer := range []bool{false, true} {
		col := tracingtest.NewCollector(t)
		p, err := New(Config{Endpoint: col.URL(), Service: "fillcast-test"})
		if err != nil {
			t.Fatal(err)
		}
		if tracer {
			p.Tracer("test")
		}
		shutdown(t, p)
		shutdown(t, p)
		if n, _ := col.Received(); n != 0 {
			t.Errorf("Tracer called %v: collector got %d requests, want none", tracer, n)
		}
	}
}

// TestAfterShutdown: spans of tracers handed out before Shutdown are
// dropped, and tracers handed out after it make spans that record nothing.
func TestAfterShutdown(t *testing.T) {
	t.Parallel()
	col := tracingtest.NewCollector(t)
	p, err := New(Config{Endpoint: col.URL(), Service: "fillcast-test"})
	if err != nil {
		t.Fatal(err)
	}
	before := p.Tracer("test")
	shutdown(t, p)
	_, span := before.Start(context.Background(), "late")
	span.End()
	_, span = p.Tracer("test").Start(context.Background(), "later")
	if span.IsRecording() {
		t.Error("tracer made after Shutdown: span is recording")
	}
	span.End()
	// Nothing is left to send them: the exporter stopped with Shutdown.
	if n, _ := col.Received(); n != 0 {
		t.Errorf("collector got %d requests, want none", n)
	}
}

// TestSampleRatio: roots are sampled at the ratio, zero meaning all, and a
// sampled parent is honoured whatever the ratio. Nothing is exported: the
// collector is never reached before Shutdown.
func TestSampleRatio(t *testing.T) {
	t.Parallel()
	sampledParent := "00-" + specTraceID + "-" + specParentID + "-01"
	for _, tc := range []struct {
		name       string
		ratio      float64
		wantRoots  bool // whether roots are recorded; 1e-12 misses with odds 1 in 10¹²
		wantParent bool
	}{
		{"zero means all", 0, true, true},
		{"all", 1, true, true},
		{"almost none", 1e-12, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			col := tracingtest.NewCollector(t)
			p, err := New(Config{Endpoint: col.URL(), Service: "fillcast-test", SampleRatio: tc.ratio})
			if err != nil {
				t.Fatal(err)
			}
			tr := p.Tracer("test")
			for range 20 {
				_, span := tr.Start(context.Background(), "root")
				if span.IsRecording() != tc.wantRoots {
					t.Fatalf("root span recording %v, want %v", span.IsRecording(), tc.wantRoots)
				}
			}
			_, span := tr.Start(remoteParent(t, sampledParent), "child")
			if span.IsRecording() != tc.wantParent {
				t.Errorf("span under a sampled parent recording %v, want %v", span.IsRecording(), tc.wantParent)
			}
			shutdown(t, p)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string // "" for valid
	}{
		{"zero: off", Config{}, ""},
		{"default: off", DefaultConfig(), ""},
		{"off ignores Service", Config{SampleRatio: 0.5}, ""},
		{"http", Config{Endpoint: "http://collector:4318", Service: "s"}, ""},
		{"https", Config{Endpoint: "https://collector:4318", Service: "s"}, ""},
		{"bare host and port", Config{Endpoint: "collector:4318", Service: "s"}, ""},
		{"bare host", Config{Endpoint: "collector", Service: "s"}, ""},
		{"IPv6", Config{Endpoint: "http://[::1]:4318", Service: "s"}, ""},
		{"path", Config{Endpoint: "https://gw.example/otlp/v1/traces", Service: "s"}, ""},
		{"upper-case scheme", Config{Endpoint: "HTTP://collector:4318", Service: "s"}, ""},
		{"ratio 1", Config{Endpoint: "collector:4318", Service: "s", SampleRatio: 1}, ""},
		{"no Service", Config{Endpoint: "collector:4318"}, "Service"},
		{"grpc scheme", Config{Endpoint: "grpc://collector:4317", Service: "s"}, "Endpoint"},
		{"no host", Config{Endpoint: "http://:4318", Service: "s"}, "Endpoint"},
		{"only a path", Config{Endpoint: "/v1/traces", Service: "s"}, "Endpoint"},
		{"credentials", Config{Endpoint: "https://user:pw@collector:4318", Service: "s"}, "Endpoint"},
		{"query", Config{Endpoint: "https://collector:4318/v1/traces?x=1", Service: "s"}, "Endpoint"},
		{"fragment", Config{Endpoint: "https://collector:4318#x", Service: "s"}, "Endpoint"},
		{"space", Config{Endpoint: "collector :4318", Service: "s"}, "Endpoint"},
		{"ratio negative", Config{SampleRatio: -0.1}, "SampleRatio"},
		{"ratio above 1", Config{SampleRatio: 1.5}, "SampleRatio"},
		{"ratio NaN", Config{SampleRatio: math.NaN()}, "SampleRatio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			var ce *fillcast.ConfigError
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.field != "" && (!errors.As(err, &ce) || ce.Pkg != "tracing" || ce.Field != tc.field):
				t.Errorf("Validate() = %v, want a tracing *fillcast.ConfigError for %s", err, tc.field)
			}
			if _, newErr := New(tc.cfg); (newErr == nil) != (err == nil) {
				t.Errorf("New: %v, but Validate: %v", newErr, err)
			}
		})
	}
}

// TestParseEndpoint: a bare host:port means https, and "/" names no path.
func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"collector:4318", "https://collector:4318"},
		{"collector:4318/", "https://collector:4318"},
		{"http://collector:4318", "http://collector:4318"},
		{"http://collector:4318/", "http://collector:4318"},
		{"HTTPS://collector:4318/otlp", "https://collector:4318/otlp"},
		{"[::1]:4318", "https://[::1]:4318"},
	} {
		u, err := parseEndpoint(tc.in)
		if err != nil {
			t.Errorf("parseEndpoint(%q): %v", tc.in, err)
			continue
		}
		if got := u.String(); got != tc.want {
			t.Errorf("parseEndpoint(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestConfigErrorsSayWhatToDo: the errors name the field and what to give.
func TestConfigErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	err := Config{Endpoint: "grpc://collector:4317", Service: "s"}.Validate()
	if got := err.Error(); !strings.HasPrefix(got, "tracing: config Endpoint: ") || !strings.Contains(got, "want http or https") {
		t.Errorf("error %q: want it prefixed by package and field and to say what to give", got)
	}
}

// TestConcurrentUse: tracers handed out and spans ended while Shutdown
// runs; the race detector checks the Provider's state.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	col := tracingtest.NewCollector(t)
	p, err := New(Config{Endpoint: col.URL(), Service: "fillcast-test"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_, span := p.Tracer("test").Start(context.Background(), "concurrent")
				span.End()
			}
		})
	}
	shutdown(t, p)
	wg.Wait()
	shutdown(t, p)
}
