// Package tracingtest is a stand-in OpenTelemetry collector for tests:
// an OTLP/HTTP receiver on loopback that decodes every export, as a real
// collector would, and records its spans.
package tracingtest

import (
	"compress/gzip"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"google.golang.org/protobuf/proto"
)

// Span is one span as the collector received it.
type Span struct {
	Name, TraceID, ParentSpanID string
	// Resource holds the string attributes of the span's resource.
	Resource map[string]string
	// Path and Encoding are the request's URL path and Content-Encoding.
	Path, Encoding string
}

// Collector is a stand-in for an OpenTelemetry collector's OTLP/HTTP
// receiver: it decodes every export as a real one would and records the
// spans in it.
type Collector struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	spans    []Span
	errs     []error
}

// NewCollector starts a collector on 127.0.0.1, closed when t ends;
// decoding errors fail t.
func NewCollector(t testing.TB) *Collector {
	t.Helper()
	c := &Collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(func() {
		c.srv.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, err := range c.errs {
			t.Errorf("collector: %v", err)
		}
	})
	return c
}

func (c *Collector) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	spans, err := decodeExport(r)
	if err != nil {
		c.mu.Lock()
		c.errs = append(c.errs, err)
		c.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.spans = append(c.spans, spans...)
	c.mu.Unlock()
	body, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(body)
}

// decodeExport reads an OTLP/HTTP protobuf export request.
func decodeExport(r *http.Request) ([]Span, error) {
	if r.Method != http.MethodPost {
		return nil, errors.New(r.Method + " " + r.URL.Path + ": want POST")
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		return nil, errors.New("Content-Type " + ct + ": want application/x-protobuf")
	}
	var body io.Reader = r.Body
	enc := r.Header.Get("Content-Encoding")
	switch enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	default:
		return nil, errors.New("Content-Encoding " + enc + ": want gzip or none")
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		return nil, err
	}
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		res := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			res[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				out = append(out, Span{
					Name:         s.GetName(),
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Resource:     res,
					Path:         r.URL.Path,
					Encoding:     enc,
				})
			}
		}
	}
	return out, nil
}

// Received returns the number of requests and the spans received so
// far.
func (c *Collector) Received() (int, []Span) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests, append([]Span(nil), c.spans...)
}

// URL is the collector's base URL, an OTLP/HTTP endpoint.
func (c *Collector) URL() string { return c.srv.URL }
