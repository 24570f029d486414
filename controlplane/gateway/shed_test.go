package gateway

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/gateway/adaptive"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestPriorityShares checks the constants against the curve they come
// from: class p of 0, 1/3, 2/3, 1 is admitted below 0.5 + 0.5·∛p.
func TestPriorityShares(t *testing.T) {
	t.Parallel()
	for i, p := range []Priority{PriorityTelemetry, PriorityRecs, PriorityBrowse, PriorityPlayback} {
		want := 0.5 + 0.5*math.Cbrt(float64(i)/3)
		if got := p.share(); math.Abs(got-want) > 1e-6 {
			t.Errorf("%v share = %v, want %v", p, got, want)
		}
	}
	if got := PriorityCritical.share(); got != 0 {
		t.Errorf("critical share = %v, want 0 (takes no slot)", got)
	}
}

// TestShedOrder fills a node with a fixed limit of 20 with blocked
// playback requests, step by step, and probes every class at each step:
// telemetry goes first (at 10 in flight), then recs (16), then browse
// (18), playback only at the limit (20), and critical never. Blocked
// critical requests take no slot.
func TestShedOrder(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{Concurrency: ConcurrencyConfig{Fixed: 20}, ShedRetryAfter: 2 * time.Second})
	b := newBlocker()
	tg.handle(t, "GET /hold", RouteOptions{Name: "hold", Priority: PriorityPlayback}, b.serve)
	tg.handle(t, "GET /hold_critical", RouteOptions{Name: "hold_critical", Priority: PriorityCritical}, b.serve)
	classes := []Priority{PriorityTelemetry, PriorityRecs, PriorityBrowse, PriorityPlayback, PriorityCritical}
	for _, p := range classes {
		tg.handle(t, "GET /"+p.String(), RouteOptions{Name: p.String(), Priority: p}, text(p.String()))
	}
	var waits []func() int
	for range 3 {
		waits = append(waits, tg.hold(t, b, "/hold_critical"))
	}
	tests := []struct {
		held int
		shed []Priority // the rest are admitted
	}{
		{0, nil},
		{9, nil},
		{10, []Priority{PriorityTelemetry}},
		{15, []Priority{PriorityTelemetry}},
		{16, []Priority{PriorityTelemetry, PriorityRecs}},
		{17, []Priority{PriorityTelemetry, PriorityRecs}},
		{18, []Priority{PriorityTelemetry, PriorityRecs, PriorityBrowse}},
		{19, []Priority{PriorityTelemetry, PriorityRecs, PriorityBrowse}},
		{20, []Priority{PriorityTelemetry, PriorityRecs, PriorityBrowse, PriorityPlayback}},
	}
	wantShed := map[Priority]float64{}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d held", tt.held), func(t *testing.T) {
			for len(waits)-3 < tt.held {
				waits = append(waits, tg.hold(t, b, "/hold"))
			}
			if got := metricValue(t, tg.reg, "fillcast_api_in_flight", nil); got != float64(tt.held) {
				t.Errorf("fillcast_api_in_flight = %v, want %d (critical requests take no slot)", got, tt.held)
			}
			shed := map[Priority]bool{}
			for _, p := range tt.shed {
				shed[p] = true
			}
			for _, p := range classes {
				got := tg.do(t, "GET", "/"+p.String(), nil, "")
				want := 200
				if shed[p] {
					want = 503
					wantShed[p]++
				}
				if got.status != want {
					t.Errorf("%v with %d in flight: status %d, want %d", p, tt.held, got.status, want)
				}
				if want == 503 && got.header.Get("Retry-After") != "2" {
					t.Errorf("%v shed with Retry-After %q, want 2", p, got.header.Get("Retry-After"))
				}
			}
		})
	}
	for _, p := range classes {
		if got := metricValue(t, tg.reg, "fillcast_api_shed_total", map[string]string{"priority": p.String()}); got != wantShed[p] {
			t.Errorf("fillcast_api_shed_total{priority=%q} = %v, want %v", p, got, wantShed[p])
		}
		if got := metricValue(t, tg.reg, "fillcast_api_rejected_total", map[string]string{"route": p.String(), "reason": "shed"}); got != wantShed[p] {
			t.Errorf("rejected{route=%q,reason=shed} = %v, want %v", p, got, wantShed[p])
		}
	}
	if got := metricValue(t, tg.reg, "fillcast_api_concurrency_limit", nil); got != 20 {
		t.Errorf("fillcast_api_concurrency_limit = %v, want 20", got)
	}
	close(b.release)
	for _, w := range waits {
		if got := w(); got != 200 {
			t.Errorf("held request = %d, want 200", got)
		}
	}
	poll.Until(t, 10*time.Second, "in-flight to drain", func() bool {
		return tg.InFlight() == 0 && metricValue(t, tg.reg, "fillcast_api_in_flight", nil) == 0
	})
}

// TestNoLimit: with Concurrency.Off nothing is shed.
func TestNoLimit(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, Config{Concurrency: ConcurrencyConfig{Off: true}})
	b := newBlocker()
	tg.handle(t, "GET /hold", RouteOptions{Name: "hold", Priority: PriorityTelemetry}, b.serve)
	tg.handle(t, "GET /t", RouteOptions{Name: "t", Priority: PriorityTelemetry}, text("t"))
	var waits []func() int
	for range 25 {
		waits = append(waits, tg.hold(t, b, "/hold"))
	}
	if got := tg.do(t, "GET", "/t", nil, ""); got.status != 200 {
		t.Errorf("telemetry with 25 in flight and no limit: %d, want 200", got.status)
	}
	if got := metricValue(t, tg.reg, "fillcast_api_concurrency_limit", nil); got != 0 {
		t.Errorf("fillcast_api_concurrency_limit = %v, want 0 with the limit off", got)
	}
	close(b.release)
	for _, w := range waits {
		w()
	}
}

// TestAdaptiveLimit drives a route whose endpoint sleeps a configurable
// time with 24 concurrent clients on real time and short sampling
// windows: the limit rises from 20 while latency stays at its floor,
// falls when the endpoint becomes twenty times slower, and rises again
// once it is fast. The clients call the gateway in process, so that the
// latency is the endpoint's sleep rather than the CPU time of a loaded
// test machine. The rise goes past 30, which takes more than the ten
// windows over which the long RTT is a plain mean: a slowdown within them
// would be taken into the baseline rather than read as queueing.
func TestAdaptiveLimit(t *testing.T) {
	t.Parallel()
	cfg := Config{NoAccessLog: true, Concurrency: ConcurrencyConfig{Adaptive: adaptive.Config{
		Window: 20 * time.Millisecond, MinSamples: 5, MinLimit: 4,
	}}}
	tg := newGatewayWith(t, cfg, func(d *Deps) { d.Now = time.Now })
	var delay atomic.Int64
	tg.handle(t, "GET /work", RouteOptions{Name: "work", Priority: PriorityPlayback}, func(w http.ResponseWriter, r *http.Request) error {
		time.Sleep(time.Duration(delay.Load()))
		_, err := io.WriteString(w, "done")
		return err
	})
	const clients = 24
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			r := httptest.NewRequest("GET", "/work", nil)
			w := &discardWriter{h: http.Header{}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				serveOnce(tg.Gateway, w, r)
				if w.status == http.StatusServiceUnavailable {
					time.Sleep(time.Millisecond) // shed: back off a little
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	limit := func() int { return int(metricValue(t, tg.reg, "fillcast_api_concurrency_limit", nil)) }

	fast, slow := 5*time.Millisecond, 100*time.Millisecond
	delay.Store(int64(fast))
	poll.Until(t, 30*time.Second, "the limit to rise above 30 at low latency", func() bool { return limit() > 30 })
	risen := limit()

	delay.Store(int64(slow))
	poll.Until(t, 30*time.Second, fmt.Sprintf("the limit to fall well below %d at twenty times the latency", risen), func() bool {
		return limit() <= risen*2/3
	})
	fallen := limit()
	if short, long := metricValue(t, tg.reg, "fillcast_api_rtt_seconds", map[string]string{"window": "short"}),
		metricValue(t, tg.reg, "fillcast_api_rtt_seconds", map[string]string{"window": "long"}); short < slow.Seconds() || long <= 0 {
		t.Errorf("rtt short %v s, long %v s; want short at least %v and long measured", short, long, slow.Seconds())
	}

	delay.Store(int64(fast))
	poll.Until(t, 30*time.Second, fmt.Sprintf("the limit to recover from %d", fallen), func() bool { return limit() >= fallen+4 })
}
