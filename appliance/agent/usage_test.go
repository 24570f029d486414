package agent

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/usage"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/prometheus/client_golang/prometheus"
)

// newReporter returns a reporter of a real recorder of appliance a1,
// sending to cl with the admin token.
func newReporter(t *testing.T, cl *clienttest.Cluster, cfg UsageConfig) (*UsageReporter, *usage.Recorder) {
	t.Helper()
	rec, err := usage.New(usage.Config{Appliance: "a1", Site: "s1"}, usage.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewUsageReporter(cfg, UsageDeps{ControlPlane: newClient(t, cl.URLs()...), Source: rec})
	if err != nil {
		t.Fatal(err)
	}
	return r, rec
}

// serve records n responses of title, a request each.
func serve(rec *usage.Recorder, title string, n int) {
	for range n {
		rec.Record(usage.Response{Title: title, Rendition: "720p", Status: 200, Bytes: 1000})
	}
}

// metric returns the value of the reporter's metric name{labels}.
func metric(t *testing.T, r *UsageReporter, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	base, label, _ := strings.Cut(name, "{")
	for _, mf := range mfs {
		if mf.GetName() != base {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue()+"}" != strings.TrimPrefix(label, "reason=")) {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestUsageQueuedWhileDown: summaries no node takes are kept, up to
// MaxQueued (the oldest dropped), and sent in order once a node is back;
// an interval that served nothing sends nothing.
func TestUsageQueuedWhileDown(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 2)
	r, rec := newReporter(t, cl, UsageConfig{MaxQueued: 3})
	ctx := context.Background()
	down := func(status int) {
		for _, n := range cl.Nodes() {
			n.Fail(status)
		}
	}
	serve(rec, "t0", 1)
	r.tick(ctx)
	calls := cl.Nodes()[0].Calls() + cl.Nodes()[1].Calls()
	r.tick(ctx) // nothing served
	if got := cl.Nodes()[0].Calls() + cl.Nodes()[1].Calls(); got != calls {
		t.Errorf("an empty interval made %d calls", got-calls)
	}
	down(http.StatusServiceUnavailable)
	for i := 1; i <= 5; i++ {
		serve(rec, fmt.Sprintf("t%d", i), i)
		r.tick(ctx)
	}
	if n := len(r.queue); n != 3 {
		t.Errorf("%d summaries queued, want 3", n)
	}
	down(0)
	r.tick(ctx)
	var titles []string
	for _, u := range cl.Usage() {
		titles = append(titles, u.Titles[0].Title)
	}
	if got := strings.Join(titles, ","); got != "t0,t3,t4,t5" {
		t.Errorf("the control plane got the summaries of %s, want t0,t3,t4,t5", got)
	}
	for name, want := range map[string]float64{
		"fillcast_appliance_usage_summaries_sent_total":                       4,
		"fillcast_appliance_usage_summary_failures_total":                     5,
		"fillcast_appliance_usage_summaries_dropped_total{reason=queue_full}": 2,
		"fillcast_appliance_usage_summaries_dropped_total{reason=refused}":    0,
		"fillcast_appliance_usage_summaries_queued":                           0,
	} {
		if got := metric(t, r, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestUsageRefusedIsDropped: a summary the control plane refuses with a
// 4xx is dropped, not sent again, and does not hold the ones after it.
func TestUsageRefusedIsDropped(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	r, rec := newReporter(t, cl, UsageConfig{})
	ctx := context.Background()
	cl.Nodes()[0].SetFault(clienttest.Fault{Status: http.StatusBadRequest})
	serve(rec, "t1", 1)
	r.tick(ctx)
	cl.Nodes()[0].Fail(0)
	serve(rec, "t2", 1)
	r.tick(ctx)
	if got := cl.Usage(); len(got) != 1 || got[0].Titles[0].Title != "t2" {
		t.Errorf("the control plane got %+v, want t2's summary alone", got)
	}
	if got := metric(t, r, "fillcast_appliance_usage_summaries_dropped_total{reason=refused}"); got != 1 {
		t.Errorf("refused summaries %v, want 1", got)
	}
}

// TestUsageRun: Run sends a summary each interval, and the last one when
// it stops.
func TestUsageRun(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 1)
	r, rec := newReporter(t, cl, UsageConfig{Interval: 20 * time.Millisecond, StopTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	serve(rec, "t1", 3)
	poll.Until(t, 10*time.Second, "the first summary", func() bool { return len(cl.Usage()) == 1 })
	serve(rec, "t2", 2)
	cancel()
	<-done
	var requests int64
	for _, u := range cl.Usage() {
		for _, row := range u.Titles {
			requests += row.Requests
		}
	}
	if requests != 5 {
		t.Errorf("the summaries count %d requests, 5 were served", requests)
	}
}

func TestUsageConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  UsageConfig
		ok   bool
	}{
		{"zero", UsageConfig{}, true},
		{"defaults", DefaultUsageConfig(), true},
		{"negative interval", UsageConfig{Interval: -time.Second}, false},
		{"tiny interval", UsageConfig{Interval: time.Millisecond}, false},
		{"negative queue", UsageConfig{MaxQueued: -1}, false},
		{"negative stop timeout", UsageConfig{StopTimeout: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	if _, err := NewUsageReporter(UsageConfig{}, UsageDeps{}); err == nil {
		t.Error("NewUsageReporter without its deps: no error")
	}
}

var _ UsageSource = (*usage.Recorder)(nil)
