package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/prometheus/client_golang/prometheus"
)

// Causes of a failed job, the reason label of
// fillcast_ingest_failures_total.
const (
	causeBadInput   = "bad_input"   // the transcoder refused the upload
	causeTranscode  = "transcode"   // the transcoder failed otherwise
	causePublish    = "publish"     // the origin refused or failed
	causeUploadLost = "upload_lost" // a restart lost the upload
	causeAttempts   = "attempts"    // interrupted by restarts too often
	causeQueueFull  = "queue_full"  // refused or dropped: the queue was full
)

// Outcomes of a stage or a job run, the outcome label.
const (
	outcomeOK          = "ok"
	outcomeFailed      = "failed"
	outcomeWaiting     = "waiting"     // a breaker was open: requeued
	outcomeInterrupted = "interrupted" // the node shut down: resumed at the next start
)

// metrics are the ingest jobs' and the file lists' Prometheus metrics.
type metrics struct {
	stages   *prometheus.HistogramVec
	jobs     *prometheus.HistogramVec
	failures *prometheus.CounterVec
	queue    prometheus.GaugeFunc
	// The file lists kept in the replicated state (lists.go).
	listsPending   prometheus.GaugeFunc
	listsPublished prometheus.Counter
	listErrors     prometheus.Counter
}

func newMetrics(queue chan string, state State) *metrics {
	buckets := prometheus.ExponentialBuckets(0.25, 2, 14) // 0.25 s to about an hour
	m := &metrics{
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fillcast_ingest_stage_seconds",
			Help:    "How long ingest stages take (transcode, publish), by stage and outcome (ok, failed, waiting for a dependency, interrupted by shutdown).",
			Buckets: buckets,
		}, []string{"stage", "outcome"}),
		jobs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fillcast_ingest_job_seconds",
			Help:    "How long a run of an ingest job takes, start to finish, by outcome (ok, failed, waiting for a dependency, interrupted by shutdown).",
			Buckets: buckets,
		}, []string{"outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_ingest_failures_total",
			Help: "Ingest jobs failed or refused, by reason: bad_input, transcode, publish, upload_lost, attempts (interrupted too often), queue_full.",
		}, []string{"reason"}),
		queue: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fillcast_ingest_queue_length",
			Help: "Ingest jobs queued on this node, waiting for a worker.",
		}, func() float64 { return float64(len(queue)) }),
		listsPending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fillcast_ingest_file_lists_pending",
			Help: "File lists kept in the replicated state until the leader has published them to the origin.",
		}, func() float64 {
			var n int
			state.Read(func(s *fsm.State) { n = len(s.FileLists) })
			return float64(n)
		}),
		listsPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fillcast_ingest_file_lists_published_total",
			Help: "Pending file lists this node published to the origin and recorded published, as the leader.",
		}),
		listErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fillcast_ingest_file_list_publish_errors_total",
			Help: "Failed attempts of this node, as the leader, to publish a pending file list (the origin down, refusing, or the record not written); the list stays pending and is tried again.",
		}),
	}
	for _, c := range []string{causeBadInput, causeTranscode, causePublish, causeUploadLost, causeAttempts, causeQueueFull} {
		m.failures.WithLabelValues(c) // every reason shows, at 0, from the start
	}
	return m
}

// outcome classifies the result err of a stage or run under ctx.
func outcome(ctx context.Context, err error) string {
	var open *protect.OpenError
	switch {
	case ctx.Err() != nil:
		return outcomeInterrupted
	case err == nil:
		return outcomeOK
	case errors.As(err, &open):
		return outcomeWaiting
	}
	return outcomeFailed
}

// timeStage observes one stage that began at start.
func (m *Manager) timeStage(ctx context.Context, stage string, start time.Time, err error) {
	m.metrics.stages.WithLabelValues(stage, outcome(ctx, err)).Observe(m.d.Now().Sub(start).Seconds())
}

// Collector returns the ingest metrics: the queue's length, stage and
// job durations, failures by reason, and the pending file lists.
func (m *Manager) Collector() prometheus.Collector { return collectors{m.metrics} }

type collectors struct{ m *metrics }

// Describe sends every collector's descriptions.
func (c collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range c.all() {
		x.Describe(ch)
	}
}

// Collect collects every collector.
func (c collectors) Collect(ch chan<- prometheus.Metric) {
	for _, x := range c.all() {
		x.Collect(ch)
	}
}

func (c collectors) all() []prometheus.Collector {
	return []prometheus.Collector{c.m.stages, c.m.jobs, c.m.failures, c.m.queue, c.m.listsPending, c.m.listsPublished, c.m.listErrors}
}
