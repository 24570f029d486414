package controlplane

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/internal/tracing"
	"github.com/fillcast/fillcast/internal/tracing/tracingtest"
)

// TestSpansExported: with an OTLP endpoint, a request carrying a W3C
// traceparent continues that trace, says so in its answer, and its span
// reaches the collector, flushed when the node stops; playback URLs carry
// the trace on to the appliances.
func TestSpansExported(t *testing.T) {
	col := tracingtest.NewCollector(t)
	ln := listen(t)
	n := runNode(t, Config{ID: "n1", DataDir: t.TempDir(), HTTP: ln.Addr().String(), Tracing: tracing.Config{Endpoint: col.URL()}},
		Deps{AdminToken: "adm", Keys: testKeys(), Listener: ln})
	poll.Until(t, 10*time.Second, "leader", func() bool { return n.Raft().IsLeader() })
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("GET", n.url+"/v1/titles", nil)
	req.Header.Set("Authorization", "Bearer adm")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tp := resp.Header.Get("traceparent"); resp.StatusCode != 200 || !strings.HasPrefix(tp, "00-"+traceID+"-") {
		t.Fatalf("GET /v1/titles: %d, traceparent %q: want 200 continuing trace %s", resp.StatusCode, tp, traceID)
	}
	n.stop() // flushes the exporter
	_, spans := col.Received()
	for _, s := range spans {
		if s.TraceID == traceID && s.Name == "GET /v1/titles" && s.Resource["service.name"] == "fillcast-controlplane" && s.Resource["service.instance.id"] == "n1" {
			return
		}
	}
	t.Fatalf("the collector got %+v, want the GET /v1/titles span of trace %s from fillcast-controlplane n1", spans, traceID)
}
