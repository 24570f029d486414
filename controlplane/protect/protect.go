// Package protect keeps a sick dependency from taking its callers down
// with it, and keeps callers from making a sick dependency sicker. It has
// two tools, used on both sides of the control plane's API:
//
//   - A Breaker (a circuit breaker on github.com/sony/gobreaker/v2) stops
//     calling a dependency whose calls keep failing: after ErrorRatio of
//     the calls in a rolling window fail it opens, and calls are refused at
//     once with an *OpenError that says when to try again; after OpenFor
//     it lets a few probes through (half-open) and closes when they
//     succeed. The gateway keeps one per route, so that a route whose
//     endpoint keeps failing answers 503 at once instead of piling work
//     onto it.
//   - Retry tries an idempotent call again after a jittered exponential
//     backoff, but only while a Budget allows: retries are capped at a
//     ratio (10 %) of first attempts over a rolling window, plus a small
//     floor, as Finagle's and Envoy's retry budgets are. A dependency that
//     fails every call then sees about 10 % more load from retries, not
//     the two or three times that "retry three times" would send it. The
//     control-plane client retries its reads this way.
//
// Both report through a Metrics registered once per Prometheus registry.
// Nothing here starts a goroutine or does I/O: a Breaker and a Budget are
// state machines that callers drive.
package protect

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors of the breakers and budgets of a
// process: register one per registry with NewMetrics and hand it to every
// Breaker and Budget. Breaker and budget names must be unique among those
// sharing a Metrics, as they are its series' labels. A nil *Metrics counts
// nothing.
type Metrics struct {
	state       *prometheus.GaugeVec
	rejected    *prometheus.CounterVec
	transitions *prometheus.CounterVec
	retries     *prometheus.CounterVec
}

// NewMetrics returns the collectors, registered in reg; with a nil reg
// they are not registered (tests, or a caller that registers them
// itself). Registering twice in one registry is an error.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fillcast_breaker_state",
			Help: "Circuit breaker state by breaker: 0 closed, 1 open, 2 half-open.",
		}, []string{"breaker"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_breaker_rejected_total",
			Help: "Calls a circuit breaker refused because it was open or half-open and full, by breaker.",
		}, []string{"breaker"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_breaker_transitions_total",
			Help: "Circuit breaker state changes, by breaker and the state changed to.",
		}, []string{"breaker", "to"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_retries_total",
			Help: "Retries by budget: made, or refused because the retry budget was spent.",
		}, []string{"budget", "outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.state, m.rejected, m.transitions, m.retries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("protect: register metrics: %w", err)
		}
	}
	return m, nil
}

// breaker makes the series of a new breaker, so that they are exported at
// zero before anything happens, and sets its state.
func (m *Metrics) breaker(name string, s State) {
	if m == nil {
		return
	}
	m.state.WithLabelValues(name).Set(float64(s))
	m.rejected.WithLabelValues(name)
	for _, to := range []State{Closed, Open, HalfOpen} {
		m.transitions.WithLabelValues(name, to.String())
	}
}

// transition records that breaker name changed to s.
func (m *Metrics) transition(name string, s State) {
	if m == nil {
		return
	}
	m.state.WithLabelValues(name).Set(float64(s))
	m.transitions.WithLabelValues(name, s.String()).Inc()
}

// reject records a call that breaker name refused.
func (m *Metrics) reject(name string) {
	if m == nil {
		return
	}
	m.rejected.WithLabelValues(name).Inc()
}

// Outcomes of a retry, the "outcome" label of fillcast_retries_total.
const (
	retryMade    = "made"
	retryRefused = "refused"
)

// retryCounters returns budget name's counters of retries made and
// refused, created at zero; nil counters when m is nil.
func (m *Metrics) retryCounters(name string) (made, refused prometheus.Counter) {
	if m == nil {
		return nil, nil
	}
	return m.retries.WithLabelValues(name, retryMade), m.retries.WithLabelValues(name, retryRefused)
}
