package gateway

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/controlplane/gateway/adaptive"
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a protection refused a request, the "reason" label of
// fillcast_api_rejected_total.
const (
	reasonShed = iota
	reasonBulkhead
	reasonCircuitOpen
	reasonTimeout
	reasonRateLimited
	reasonStatic
	numReasons
)

var reasonNames = [numReasons]string{"shed", "bulkhead", "circuit_open", "timeout", "rate_limited", "static"}

// metrics are the gateway's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	rejected *prometheus.CounterVec
	denied   *prometheus.CounterVec
	shedVec  *prometheus.CounterVec
	shed     [numPriorities]prometheus.Counter
	// node are the gauges of the node-wide concurrency limit, read
	// from the limiter when scraped.
	node []prometheus.Collector
}

// newMetrics makes the collectors and registers them in reg, if not nil;
// the node-wide gauges read l, which is nil when the limit is off.
func newMetrics(reg prometheus.Registerer, l *adaptive.Limiter) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_api_requests_total",
			Help: "API requests answered, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fillcast_api_request_duration_seconds",
			Help:    "Time from receiving an API request to the end of its response, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fillcast_api_in_flight_requests",
			Help: "API requests in progress, by route.",
		}, []string{"route"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_api_rejected_total",
			Help: "API requests refused by a protection (shed, bulkhead, circuit_open, timeout, rate_limited) or answered by an operator's static response (static), by route.",
		}, []string{"route", "reason"}),
		shedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_api_shed_total",
			Help: "API requests shed under overload, by priority class.",
		}, []string{"priority"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_api_denied_total",
			Help: "API requests refused with 401 or 403 (bad_credential, no_credential, not_allowed, or the endpoint's reason), by route.",
		}, []string{"route", "reason"}),
	}
	for p := PriorityTelemetry; p <= PriorityCritical; p++ {
		m.shed[p.index()] = m.shedVec.WithLabelValues(p.String())
	}
	m.node = nodeGauges(l)
	if reg == nil {
		return m, nil
	}
	for _, c := range append([]prometheus.Collector{m.requests, m.duration, m.inFlight, m.rejected, m.denied, m.shedVec}, m.node...) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway: register metrics: %w", err)
		}
	}
	return m, nil
}

// routeMetrics are one route's children of the collectors, resolved once so
// that the hot path does no label lookups.
type routeMetrics struct {
	m        *metrics
	name     string
	duration prometheus.Observer
	inFlight prometheus.Gauge
	codes    [500]atomic.Pointer[prometheus.Counter] // status 100 to 599
	rejected [numReasons]prometheus.Counter
}

func (m *metrics) forRoute(name string) *routeMetrics {
	rm := &routeMetrics{
		m:        m,
		name:     name,
		duration: m.duration.WithLabelValues(name),
		inFlight: m.inFlight.WithLabelValues(name),
	}
	for i := range rm.rejected {
		rm.rejected[i] = m.rejected.WithLabelValues(name, reasonNames[i])
	}
	rm.code(200)
	return rm
}

// code returns the request counter for a status.
func (rm *routeMetrics) code(status int) prometheus.Counter {
	i := status - 100
	if i < 0 || i >= len(rm.codes) {
		return rm.m.requests.WithLabelValues(rm.name, strconv.Itoa(status))
	}
	if c := rm.codes[i].Load(); c != nil {
		return *c
	}
	c := rm.m.requests.WithLabelValues(rm.name, strconv.Itoa(status))
	rm.codes[i].Store(&c)
	return c
}

// drop removes the route's series, for a route whose registration failed.
func (rm *routeMetrics) drop() {
	m := rm.m
	m.requests.DeletePartialMatch(prometheus.Labels{"route": rm.name})
	m.duration.DeleteLabelValues(rm.name)
	m.inFlight.DeleteLabelValues(rm.name)
	m.rejected.DeletePartialMatch(prometheus.Labels{"route": rm.name})
}

// nodeGauges are the node-wide concurrency gauges, all zero when l is nil
// (the limit is off).
func nodeGauges(l *adaptive.Limiter) []prometheus.Collector {
	state := func() adaptive.State {
		if l == nil {
			return adaptive.State{}
		}
		return l.State()
	}
	rtt := func(window string, get func(adaptive.State) time.Duration) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "fillcast_api_rtt_seconds",
			Help:        "Latency the adaptive concurrency limit is computed from: the last window's mean (short) and the long-term average (long).",
			ConstLabels: prometheus.Labels{"window": window},
		}, func() float64 { return get(state()).Seconds() })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fillcast_api_concurrency_limit",
			Help: "The node's concurrency limit that non-critical API requests are shed against (0: no limit).",
		}, func() float64 { return float64(state().Limit) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fillcast_api_in_flight",
			Help: "Non-critical API requests holding a slot of the node's concurrency limit.",
		}, func() float64 { return float64(state().InFlight) }),
		rtt("short", func(s adaptive.State) time.Duration { return s.ShortRTT }),
		rtt("long", func(s adaptive.State) time.Duration { return s.LongRTT }),
	}
}
