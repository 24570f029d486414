package agent

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/prometheus/client_golang/prometheus"
)

// UsageSink takes the usage summaries: the control plane.
type UsageSink interface {
	// ReportUsage posts one summary (POST /v1/appliances/{id}/usage).
	ReportUsage(ctx context.Context, u *fillcast.Usage) error
}

var _ UsageSink = (*client.Client)(nil)

// UsageSource cuts the summaries: the appliance's *usage.Recorder.
type UsageSource interface {
	// Cut ends the interval under way and returns its summary, or nil
	// when nothing was served in it.
	Cut() *fillcast.Usage
}

// MinUsageInterval is the shortest UsageConfig.Interval.
const MinUsageInterval = 10 * time.Millisecond

// UsageConfig configures a UsageReporter. Zero values mean the defaults
// named.
type UsageConfig struct {
	// Interval is the time between two summaries. Zero means 10 s; at
	// least MinUsageInterval.
	Interval time.Duration
	// MaxQueued bounds the summaries kept while no control-plane node
	// takes them: the oldest beyond it is dropped. Zero means 30 (five
	// minutes of 10 s summaries).
	MaxQueued int
	// StopTimeout bounds the sending of what is queued, the last
	// interval's summary included, when Run stops. Zero means 2 s.
	StopTimeout time.Duration
}

// DefaultUsageConfig returns a UsageConfig with every default filled in.
func DefaultUsageConfig() UsageConfig {
	return UsageConfig{Interval: 10 * time.Second, MaxQueued: 30, StopTimeout: 2 * time.Second}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c UsageConfig) Validate() error {
	switch {
	case c.Interval < 0:
		return fillcast.ConfigErrorf("agent", "Interval", "%v is negative", c.Interval)
	case c.Interval > 0 && c.Interval < MinUsageInterval:
		return fillcast.ConfigErrorf("agent", "Interval", "%v: want at least %v (0 means 10s)", c.Interval, MinUsageInterval)
	case c.MaxQueued < 0:
		return fillcast.ConfigErrorf("agent", "MaxQueued", "%d is negative", c.MaxQueued)
	case c.StopTimeout < 0:
		return fillcast.ConfigErrorf("agent", "StopTimeout", "%v is negative", c.StopTimeout)
	}
	return nil
}

func (c UsageConfig) withDefaults() UsageConfig {
	d := DefaultUsageConfig()
	c.Interval = cmp.Or(c.Interval, d.Interval)
	c.MaxQueued = cmp.Or(c.MaxQueued, d.MaxQueued)
	c.StopTimeout = cmp.Or(c.StopTimeout, d.StopTimeout)
	return c
}

// UsageDeps are what a UsageReporter works with besides its Config.
type UsageDeps struct {
	// ControlPlane takes the summaries. Required.
	ControlPlane UsageSink
	// Source cuts them. Required.
	Source UsageSource
	// Log receives the summaries not sent; nil discards them.
	Log *slog.Logger
}

// UsageReporter sends the appliance's usage summaries to the control
// plane: every Interval it cuts one from its Source and sends it, with
// the summaries no node took before, oldest first. It runs apart from
// serving, which only records into the Source, so a control plane that
// is down or slow never holds a response back. A summary no node takes
// is kept, up to MaxQueued, and sent again at the next interval with its
// ID, by which the control plane counts it once; a summary the control
// plane refuses (a 4xx answer: it will not change its mind) is dropped.
// An interval that served nothing sends nothing.
type UsageReporter struct {
	cfg   UsageConfig
	d     UsageDeps
	log   *slog.Logger
	queue []*fillcast.Usage // only the goroutine of Run touches it

	m usageMetrics
}

type usageMetrics struct {
	sent, failed           prometheus.Counter
	full, refused, stopped prometheus.Counter // dropped, by reason
	queued                 prometheus.Gauge
	all                    []prometheus.Collector
}

// NewUsageReporter returns a UsageReporter; Run starts it.
func NewUsageReporter(cfg UsageConfig, d UsageDeps) (*UsageReporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.ControlPlane == nil || d.Source == nil {
		return nil, errors.New("agent: UsageDeps.ControlPlane and UsageDeps.Source are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	r := &UsageReporter{cfg: cfg.withDefaults(), d: d, log: d.Log}
	m := &r.m
	m.sent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fillcast_appliance_usage_summaries_sent_total",
		Help: "Usage summaries the control plane took.",
	})
	m.failed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fillcast_appliance_usage_summary_failures_total",
		Help: "Sends of a usage summary that no control-plane node took: the summary is kept and sent again.",
	})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fillcast_appliance_usage_summaries_dropped_total",
		Help: "Usage summaries given up: the oldest kept when the queue was full (queue_full), refused by the control plane (refused), left unsent at stop (stopped).",
	}, []string{"reason"})
	m.full, m.refused, m.stopped = dropped.WithLabelValues("queue_full"), dropped.WithLabelValues("refused"), dropped.WithLabelValues("stopped")
	m.queued = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fillcast_appliance_usage_summaries_queued",
		Help: "Usage summaries waiting for a control-plane node to take them.",
	})
	m.all = []prometheus.Collector{m.sent, m.failed, dropped, m.queued}
	return r, nil
}

// Collector returns the reporter's Prometheus metrics.
func (r *UsageReporter) Collector() prometheus.Collector { return collectors(r.m.all) }

// collectors is several collectors as one.
type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// Run cuts and sends a summary every Interval until ctx is done; then it
// cuts the last one and sends what is queued within StopTimeout. Stop it
// after the servers, so that the last summary counts every response.
func (r *UsageReporter) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.StopTimeout)
			r.tick(sctx)
			cancel()
			if n := len(r.queue); n > 0 {
				r.m.stopped.Add(float64(n))
				r.log.Warn("agent: usage summaries not sent before stopping", "summaries", n)
			}
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, r.cfg.Interval)
			r.tick(sctx)
			cancel()
		}
	}
}

// tick cuts the interval under way and sends the queue, oldest first,
// until a send fails or ctx ends.
func (r *UsageReporter) tick(ctx context.Context) {
	if u := r.d.Source.Cut(); u != nil {
		if len(r.queue) >= r.cfg.MaxQueued {
			r.queue[0] = nil
			r.queue = r.queue[1:]
			r.m.full.Inc()
		}
		r.queue = append(r.queue, u)
	}
	defer func() { r.m.queued.Set(float64(len(r.queue))) }()
	for len(r.queue) > 0 {
		u := r.queue[0]
		err := r.d.ControlPlane.ReportUsage(ctx, u)
		switch {
		case err == nil:
			r.m.sent.Inc()
		case refused(err):
			r.m.refused.Inc()
			r.log.Warn("agent: the control plane refused a usage summary: dropped", "id", u.ID, "err", err)
		default:
			r.m.failed.Inc()
			r.log.Warn("agent: no control plane took the usage summary: sent again at the next interval",
				"id", u.ID, "queued", len(r.queue), "err", err)
			return
		}
		r.queue[0] = nil
		r.queue = r.queue[1:]
	}
}

// refused reports whether err is the control plane's refusal of a
// summary, which sending it again would not change: a 4xx answer but for
// 408 and 429, or a summary the client found invalid.
func refused(err error) bool {
	s := client.StatusCode(err)
	return errors.Is(err, fillcast.ErrBadUsage) ||
		s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
}
