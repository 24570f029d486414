package subscriptions

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are billing's Prometheus collectors. A nil *Metrics counts
// nothing.
type Metrics struct {
	charges  *prometheus.CounterVec
	renewals *prometheus.CounterVec
	passes   prometheus.Histogram
}

// NewMetrics returns the collectors, registered in reg unless it is nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		charges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_billing_charges_total",
			Help: "Charges asked of the payment provider, by outcome: succeeded, declined, no_card (nothing to charge), error (no answer).",
		}, []string{"outcome"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_billing_renewals_total",
			Help: "Subscriptions the renewal passes acted on, by result: renewed, past_due, canceled, reconciled (a charge found by its key after a crash), skipped (another pass got there first), failed.",
		}, []string{"result"}),
		passes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fillcast_billing_pass_seconds",
			Help:    "How long renewal passes take.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.charges, m.renewals, m.passes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("subscriptions: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) charged(outcome string) {
	if m != nil {
		m.charges.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) renewed(result string, n int) {
	if m != nil && n > 0 {
		m.renewals.WithLabelValues(result).Add(float64(n))
	}
}

func (m *Metrics) pass(seconds float64) {
	if m != nil {
		m.passes.Observe(seconds)
	}
}
