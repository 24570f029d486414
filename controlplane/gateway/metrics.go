package gateway

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a protection refused a request, the "reason" label of
// fillcast_api_rejected_total.
const (
	reasonShed = iota
	reasonBulkhead
	reasonCircuitOpen
	reasonTimeout
	numReasons
)

var reasonNames = [numReasons]string{"shed", "bulkhead", "circuit_open", "timeout"}

// metrics are the gateway's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	circuit  *prometheus.GaugeVec
	rejected *prometheus.CounterVec
	denied   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
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
		circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fillcast_api_circuit_state",
			Help: "Circuit breaker state by route: 0 closed, 1 open, 2 half-open.",
		}, []string{"route"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_api_rejected_total",
			Help: "API requests refused by a protection (shed, bulkhead, circuit_open, timeout), by route.",
		}, []string{"route", "reason"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_api_denied_total",
			Help: "API requests refused with 401 or 403 (bad_credential, no_credential, not_allowed, or the endpoint's reason), by route.",
		}, []string{"route", "reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, m.circuit, m.rejected, m.denied} {
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
	m.circuit.DeleteLabelValues(rm.name)
	m.rejected.DeletePartialMatch(prometheus.Labels{"route": rm.name})
}
