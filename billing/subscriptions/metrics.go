package subscriptions

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fillcast/fillcast/billing"
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
			Help: "Subscriptions the renewal passes acted on, by result: renewed, past_due, canceled, trial_ended, settled (a pending charge settled), reconciled (a charge found by its key after a crash), skipped (another pass got there first), failed.",
		}, []string{"result"}),
		passes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fillcast_billing_pass_seconds",
			Help:    "How long renewal passes take.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
	}
	// Every outcome shows from the start, at 0, so that alerts on their
	// rates see the first one.
	for _, o := range []string{"succeeded", "declined", "no_card", "error"} {
		m.charges.WithLabelValues(o)
	}
	for _, r := range []string{"renewed", "past_due", "canceled", "trial_ended", "settled", "reconciled", "skipped", "failed"} {
		m.renewals.WithLabelValues(r)
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

// The billing report as gauges.
var (
	descSubscriptions = prometheus.NewDesc("fillcast_billing_subscriptions",
		"Subscriptions by status (trialing, active, past_due, canceled, incomplete), from the billing report.",
		[]string{"status"}, nil)
	descMRR = prometheus.NewDesc("fillcast_billing_mrr_minor_units",
		"Monthly recurring revenue of the active and past-due subscriptions, in the currency's minor units (cents), by currency.",
		[]string{"currency"}, nil)
	descChurn = prometheus.NewDesc("fillcast_billing_churn_ratio",
		"Share of the subscriptions paying or trialing 30 days ago that have ended since.", nil, nil)
	descFailed30d = prometheus.NewDesc("fillcast_billing_failed_payments_30d",
		"Declined charges in the last 30 days.", nil, nil)
	descReportAge = prometheus.NewDesc("fillcast_billing_report_age_seconds",
		"Age of the billing report the billing gauges come from.", nil, nil)
)

// reportTimeout bounds one report made for a scrape.
const reportTimeout = 10 * time.Second

// ReportCollector returns the billing report's figures as gauges:
// subscriptions by status (past_due among them), MRR, churn and the
// declined charges of 30 days. The report reads every subscription and
// ledger entry, so a scrape makes a new one only when the last is older
// than every (zero means a minute), and otherwise, or when making one
// fails, reports the last.
func (s *Service) ReportCollector(every time.Duration) prometheus.Collector {
	if every <= 0 {
		every = time.Minute
	}
	return &reportCollector{s: s, every: every}
}

type reportCollector struct {
	s     *Service
	every time.Duration
	mu    sync.Mutex
	last  Report
	ok    bool // last holds a report
}

// Describe sends the descriptions.
func (c *reportCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSubscriptions, descMRR, descChurn, descFailed30d, descReportAge} {
		ch <- d
	}
}

// Collect reports the last report, made anew if it is too old.
func (c *reportCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.s.now()
	if !c.ok || now.Sub(c.last.AsOf) >= c.every {
		ctx, cancel := context.WithTimeout(context.Background(), reportTimeout)
		r, err := c.s.Report(ctx)
		cancel()
		if err == nil {
			c.last, c.ok = r, true
		} else {
			c.s.d.Log.Warn("subscriptions: billing report for metrics", "err", err)
		}
	}
	if !c.ok {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, st := range []billing.Status{billing.Trialing, billing.Active, billing.PastDue, billing.Canceled, billing.Incomplete} {
		gauge(descSubscriptions, float64(c.last.Subscriptions[st]), string(st))
	}
	for _, m := range c.last.MRR {
		gauge(descMRR, float64(m.Amount), m.Currency)
	}
	gauge(descChurn, c.last.Churn)
	gauge(descFailed30d, float64(c.last.FailedPayments30d))
	gauge(descReportAge, now.Sub(c.last.AsOf).Seconds())
}
