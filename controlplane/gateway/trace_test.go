package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// seenTrace is what an endpoint saw of its request's trace.
type seenTrace struct {
	TraceID, Traceparent, FromContext string
}

// traceEcho answers what the endpoint sees of the trace, or 500 when
// asked to fail.
func traceEcho(w http.ResponseWriter, r *http.Request) error {
	rc := FromContext(r.Context())
	sc := trace.SpanContextFromContext(r.Context())
	if r.URL.Query().Get("fail") != "" {
		return Errorf(http.StatusServiceUnavailable, "failing on purpose")
	}
	return WriteJSON(w, http.StatusOK, seenTrace{TraceID: rc.TraceID(), Traceparent: rc.Traceparent(),
		FromContext: "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()})
}

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// checkTrace checks one answer: a valid traceparent header, the same the
// endpoint saw, in the request's trace when wantTrace is set, and in the
// access log.
func checkTrace(t *testing.T, tg *testGateway, got response, wantTrace string) string {
	t.Helper()
	tp := got.header.Get("Traceparent")
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 {
		t.Fatalf("traceparent header %q is not a version 00 traceparent", tp)
	}
	if wantTrace != "" && parts[1] != wantTrace {
		t.Errorf("trace id %s, want the incoming %s", parts[1], wantTrace)
	}
	if parts[2] == "00f067aa0ba902b7" || parts[2] == "0000000000000000" {
		t.Errorf("span id %s: want one of the gateway's own", parts[2])
	}
	if got.status == 200 {
		var seen seenTrace
		if err := json.Unmarshal([]byte(got.body), &seen); err != nil {
			t.Fatalf("body %q: %v", got.body, err)
		}
		if seen.Traceparent != tp || seen.FromContext != tp || seen.TraceID != parts[1] {
			t.Errorf("endpoint saw %+v, response header %s", seen, tp)
		}
	}
	id := got.header.Get("X-Request-Id")
	poll.Until(t, 10*time.Second, "the access log line of "+id, func() bool {
		for _, l := range tg.log.lines(t) {
			if l["msg"] == "request" && l["request_id"] == id {
				if l["trace_id"] != parts[1] {
					t.Fatalf("access log trace_id = %v, want %s", l["trace_id"], parts[1])
				}
				return true
			}
		}
		return false
	})
	return tp
}

func TestTraceContext(t *testing.T) {
	t.Parallel()
	for _, tracer := range []struct {
		name string
		t    trace.Tracer
	}{{"no tracer", nil}, {"no-op tracer", noop.NewTracerProvider().Tracer("test")}} {
		t.Run(tracer.name, func(t *testing.T) {
			t.Parallel()
			tg := newGatewayWith(t, Config{}, func(d *Deps) { d.Tracer = tracer.t })
			tg.handle(t, "GET /t", RouteOptions{Name: "t"}, traceEcho)
			tests := []struct {
				name, path, traceparent, wantTrace string
			}{
				{"incoming trace kept", "/t", incoming, "4bf92f3577b34da6a3ce929d0e0e4736"},
				{"none: a new trace", "/t", "", ""},
				{"malformed: a new trace", "/t", "00-zz-00f067aa0ba902b7-01", ""},
				{"unmatched requests have one too", "/nowhere", incoming, "4bf92f3577b34da6a3ce929d0e0e4736"},
			}
			seen := map[string]bool{}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					h := http.Header{}
					if tt.traceparent != "" {
						h.Set("traceparent", tt.traceparent)
					}
					tp := checkTrace(t, tg, tg.do(t, "GET", tt.path, h, ""), tt.wantTrace)
					if tt.wantTrace == "" && (seen[tp[3:35]] || strings.HasSuffix(tp, "-00")) {
						t.Errorf("new trace %s: repeated, or not sampled", tp)
					}
					seen[tp[3:35]] = true
				})
			}
		})
	}
}

// TestTracerSpans: with an SDK tracer, every routed request is a server
// span named after its route, a child of the incoming traceparent, whose
// ids the response and the endpoint see; 5xx answers are errors.
func TestTracerSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tg := newGatewayWith(t, Config{}, func(d *Deps) { d.Tracer = tp.Tracer("gateway") })
	tg.handle(t, "GET /v1/titles/{id}", RouteOptions{Name: "get_title"}, traceEcho)

	h := http.Header{"Traceparent": {incoming}}
	ok := checkTrace(t, tg, tg.do(t, "GET", "/v1/titles/t1", h, ""), "4bf92f3577b34da6a3ce929d0e0e4736")
	failed := checkTrace(t, tg, tg.do(t, "GET", "/v1/titles/t1?fail=1", h, ""), "4bf92f3577b34da6a3ce929d0e0e4736")
	checkTrace(t, tg, tg.do(t, "GET", "/nowhere", h, ""), "4bf92f3577b34da6a3ce929d0e0e4736")

	poll.Until(t, 10*time.Second, "two ended spans", func() bool { return len(rec.Ended()) == 2 })
	for i, span := range rec.Ended() {
		sc := span.SpanContext()
		want := []string{ok, failed}[i]
		if got := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; got != want {
			t.Errorf("span %d is %s, the response said %s", i, got, want)
		}
		if span.Name() != "GET /v1/titles/{id}" || span.SpanKind() != trace.SpanKindServer || span.Parent().SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("span %d: name %q kind %v parent %v; want the route's server span, child of the incoming one", i, span.Name(), span.SpanKind(), span.Parent().SpanID())
		}
		attrs := map[string]string{}
		for _, kv := range span.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		wantStatus, wantCode := "200", codes.Unset
		if i == 1 {
			wantStatus, wantCode = "503", codes.Error
		}
		if attrs["http.request.method"] != "GET" || attrs["http.route"] != "/v1/titles/{id}" || attrs["fillcast.route"] != "get_title" ||
			attrs["http.response.status_code"] != wantStatus || span.Status().Code != wantCode {
			t.Errorf("span %d: attributes %v status %v, want status %s and code %v", i, attrs, span.Status(), wantStatus, wantCode)
		}
	}
}
