// Package tracing is how Fillcast's processes report spans: one Provider
// per process, made from a Config that names an OTLP/HTTP collector, hands
// out tracers to the packages that start spans, and flushes what is left
// when the process shuts down.
//
// Tracing is optional. Without a collector (Config.Endpoint empty) the
// Provider's tracers are no-ops: they create no spans of their own, only
// carry an incoming trace context along so that a request's trace id still
// reaches the logs (see TraceID). With one, spans are sampled
// ParentBased — a caller's sampled flag is always honoured, and requests
// that arrive without a trace are sampled at Config.SampleRatio — batched,
// and posted gzip-compressed as protobuf to the collector.
//
// The package leaves the process-wide OpenTelemetry state alone (global
// tracer provider, propagator, error handler): the caller that owns the
// process sets those if it wants them.
package tracing

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fillcast/fillcast"
)

// tracesPath is the OTLP/HTTP path for traces, used when Config.Endpoint
// names none.
const tracesPath = "/v1/traces"

// requestTimeout bounds one request to the collector; the batch processor
// bounds a whole export, retries included, to 30 s.
const requestTimeout = 10 * time.Second

// Config configures a Provider. Zero values mean the defaults named.
type Config struct {
	// Endpoint is the OTLP/HTTP collector spans are sent to:
	// "http://collector:4318" for plaintext, "https://collector:4318" for
	// TLS (with the system's roots), or "collector:4318", which means
	// https. The URL path is /v1/traces unless Endpoint names one
	// ("https://gw.example/otlp/v1/traces"; a lone "/" names none).
	// Empty turns export off: tracers are no-ops and nothing is sent.
	// The standard OTEL_EXPORTER_OTLP_* variables can neither redirect
	// spans nor change TLS, but their headers still apply: a collector's
	// credentials belong there, not in Endpoint.
	Endpoint string
	// Service is the resource's service.name, the name the collector files
	// spans under, e.g. "fillcast-controlplane". Required when Endpoint is
	// set.
	Service string
	// Instance is the resource's service.instance.id, e.g. the node id.
	// Empty leaves it out.
	Instance string
	// SampleRatio is the fraction, in [0, 1], of the traces that start
	// here (spans without a parent) that are recorded and sent. A parent's
	// sampled flag, set or not, always wins over it. Zero means 1: every
	// trace.
	SampleRatio float64
}

// DefaultConfig returns a Config with every default filled in; tracing
// stays off until Endpoint and Service are set.
func DefaultConfig() Config {
	return Config{SampleRatio: 1}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if math.IsNaN(c.SampleRatio) || c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fillcast.ConfigErrorf("tracing", "SampleRatio", "%v is not in [0, 1] (0 means 1: every trace)", c.SampleRatio)
	}
	if c.Endpoint == "" {
		return nil
	}
	if _, err := parseEndpoint(c.Endpoint); err != nil {
		return fillcast.ConfigErrorf("tracing", "Endpoint", "%v", err)
	}
	if c.Service == "" {
		return fillcast.ConfigErrorf("tracing", "Service", "required with an Endpoint: the service.name spans are filed under, e.g. fillcast-appliance")
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	if c.SampleRatio == 0 {
		c.SampleRatio = DefaultConfig().SampleRatio
	}
	return c
}

// parseEndpoint returns the collector URL that Config.Endpoint names, with
// https for a bare host:port and an empty Path when it names none.
func parseEndpoint(s string) (*url.URL, error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "https://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: give http://host:port or https://host:port", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: scheme %q, want http or https", s, u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%q names no host: give http://host:port or https://host:port", s)
	case u.User != nil:
		return nil, fmt.Errorf("%q holds credentials, which are never sent: put them in OTEL_EXPORTER_OTLP_HEADERS", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%q has a query or fragment, which the exporter would drop", s)
	}
	if u.Path == "/" {
		u.Path = ""
	}
	return u, nil
}

// Provider hands out the tracers of one process and owns what exports
// their spans. Its methods are safe for concurrent use.
type Provider struct {
	// off is the tracer provider used without an Endpoint and after
	// Shutdown: no-op tracers that carry an incoming span context along.
	off trace.TracerProvider

	// The rest is nil without an Endpoint.

	// exporter posts batches to the collector through client.
	exporter *otlptrace.Exporter
	client   *http.Client
	res      *resource.Resource
	sampler  sdktrace.Sampler

	mu sync.Mutex
	// sdk is made by the first Tracer call, so that New starts nothing;
	// nil until then.
	sdk *sdktrace.TracerProvider
	// shut is set by the first Shutdown.
	shut bool
}

// New returns a Provider for cfg. It contacts no one and starts nothing:
// the batch processor's goroutine starts with the first Tracer call, and
// the collector is first contacted when a batch is due.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Provider{off: noop.NewTracerProvider()}
	if cfg.Endpoint == "" {
		return p, nil
	}
	u, _ := parseEndpoint(cfg.Endpoint) // checked by Validate

	// An http.Client of our own, rather than the exporter's shared
	// transport, so that Shutdown can close its idle connections.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	p.client = &http.Client{Transport: transport, Timeout: requestTimeout}
	opts := []otlptracehttp.Option{
		// WithEndpointURL also sets http or https from the scheme, over
		// anything OTEL_EXPORTER_OTLP_INSECURE says.
		otlptracehttp.WithEndpointURL(u.String()),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
		otlptracehttp.WithHTTPClient(p.client),
		// Drops a TLS config made from OTEL_EXPORTER_OTLP_CERTIFICATE:
		// p.client would ignore it, and with an http endpoint the
		// exporter would refuse to start.
		otlptracehttp.WithTLSClientConfig(nil),
	}
	if u.Path == "" {
		opts = append(opts, otlptracehttp.WithURLPath(tracesPath))
	}
	// Start, called by New, only checks the options; the context is not
	// kept.
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter for %s: %w", cfg.Endpoint, err)
	}
	p.exporter = exp

	attrs := []attribute.KeyValue{semconv.ServiceName(cfg.Service)}
	if cfg.Instance != "" {
		attrs = append(attrs, semconv.ServiceInstanceID(cfg.Instance))
	}
	// Schemaless, so that the merge with the SDK's default resource
	// (telemetry.sdk.*, OTEL_RESOURCE_ATTRIBUTES) never conflicts over a
	// schema version; ours wins over the environment's service.name.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	p.res = res
	p.sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))
	return p, nil
}

// Tracer returns the tracer named name (the instrumented package's import
// path, by convention). Without an Endpoint, or after Shutdown, it is a
// no-op tracer whose spans record nothing and carry the parent's span
// context, if any.
func (p *Provider) Tracer(name string) trace.Tracer {
	if p.exporter == nil {
		return p.off.Tracer(name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return p.off.Tracer(name)
	}
	if p.sdk == nil {
		p.sdk = sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(p.exporter),
			sdktrace.WithResource(p.res),
			sdktrace.WithSampler(p.sampler),
		)
	}
	return p.sdk.Tracer(name)
}

// Shutdown sends the spans that have ended but not been sent yet, waiting
// for the collector until ctx is done, and stops the exporter; spans ended
// afterwards are dropped. It is safe to call twice: the second call does
// nothing.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.exporter == nil {
		return nil
	}
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return nil
	}
	p.shut = true
	sdk := p.sdk
	p.mu.Unlock()

	var err error
	if sdk != nil {
		// Flushes the batch processor, then shuts the exporter down.
		err = sdk.Shutdown(ctx)
	} else {
		err = p.exporter.Shutdown(ctx)
	}
	p.client.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}
