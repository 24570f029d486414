package stream

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descAvailable = prometheus.NewDesc("fillcast_events_stream_available",
		"1 while this node can publish to the event stream, else 0.", nil, nil)
	descLastSeq = prometheus.NewDesc("fillcast_events_stream_last_sequence",
		"Sequence of the last message in the event stream.", nil, nil)
	descMessages = prometheus.NewDesc("fillcast_events_stream_messages",
		"Messages the event stream holds.", nil, nil)
	descBytes = prometheus.NewDesc("fillcast_events_stream_bytes",
		"Bytes the event stream holds.", nil, nil)
	descLag = prometheus.NewDesc("fillcast_events_consumer_lag",
		"Messages in the stream after the last one a projection of this node folded in (stream last sequence - the projection's position), by consumer.",
		[]string{"consumer"}, nil)
)

// collectTimeout bounds the question to the stream a scrape asks.
const collectTimeout = 2 * time.Second

// Collector returns the stream's metrics, read when scraped: whether it
// is available, its size and last sequence, and how far each of this
// node's projections lags behind it.
func (s *Stream) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Stream }

// Describe sends the descriptions.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAvailable, descLastSeq, descMessages, descBytes, descLag} {
		ch <- d
	}
}

// Collect asks the stream for its state; while it is unavailable only
// descAvailable is reported.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	js := c.s.JetStream()
	if js == nil {
		gauge(descAvailable, 0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	st, err := js.Stream(ctx, Name)
	if err != nil {
		gauge(descAvailable, 0)
		return
	}
	gauge(descAvailable, 1)
	state := st.CachedInfo().State
	gauge(descLastSeq, float64(state.LastSeq))
	gauge(descMessages, float64(state.Msgs))
	gauge(descBytes, float64(state.Bytes))
	for _, cons := range c.s.consumers {
		_, seq := cons.h.Position()
		gauge(descLag, float64(state.LastSeq-min(seq, state.LastSeq)), cons.name)
	}
}
