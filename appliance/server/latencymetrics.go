package server

import (
	"math"

	"github.com/fillcast/fillcast/appliance/latency"
	"github.com/prometheus/client_golang/prometheus"
)

// descLatency is the content answers' latency, the histogram the
// heartbeats take their p99 from, as Prometheus reads it.
var descLatency = prometheus.NewDesc("fillcast_appliance_response_seconds",
	"Time to answer content requests, from the request read to the answer handed to the connection (the latency heartbeats report the p99 of). The sum is estimated from the buckets' geometric midpoints.",
	nil, nil)

// latencyEvery keeps every latencyEvery-th of latency.Buckets' bounds as
// a Prometheus bucket bound: 16 buckets from 50 µs to 10 s.
const latencyEvery = 4

// serverCollector is the server's metrics: its counters and the latency
// histogram, read when scraped.
type serverCollector struct{ s *Server }

// Describe sends the descriptions.
func (c serverCollector) Describe(ch chan<- *prometheus.Desc) {
	c.s.metrics.Describe(ch)
	ch <- descLatency
}

// Collect sends the counters and the latency histogram.
func (c serverCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.metrics.Collect(ch)
	snap := c.s.latency.Snapshot()
	buckets := make(map[float64]uint64, latency.Buckets/latencyEvery+1)
	var count uint64
	var sum float64
	for i, n := range snap.Counts {
		count += n
		lo, hi := latency.Bounds(i)
		var mid float64 // the bucket's typical duration, for the sum
		switch {
		case i == 0:
			mid = hi.Seconds() / 2
		case hi == math.MaxInt64:
			mid = lo.Seconds()
		default:
			mid = math.Sqrt(lo.Seconds() * hi.Seconds())
		}
		sum += float64(n) * mid
		if hi != math.MaxInt64 && (i%latencyEvery == 0 || i == latency.Buckets-2) {
			buckets[hi.Seconds()] = count
		}
	}
	ch <- prometheus.MustNewConstHistogram(descLatency, count, sum, buckets)
}
