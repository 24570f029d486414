package server

import (
	"strconv"
	"sync"

	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's own Prometheus metrics. Counters for the
// usual status codes are resolved once so the hot path does no label
// lookups.
type metrics struct {
	requests     *prometheus.CounterVec
	sentBytes    *prometheus.CounterVec
	tokenRejects prometheus.Counter
	forbidden    *prometheus.CounterVec
	cmcdErrors   prometheus.Counter

	byTier [3]prometheus.Counter
	mu     sync.RWMutex
	byCode map[int]prometheus.Counter
}

var _ prometheus.Collector = (*metrics)(nil)

func newMetrics() *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_appliance_requests_total",
			Help: "Requests answered, by status code.",
		}, []string{"code"}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_appliance_sent_bytes_total",
			Help: "Body bytes sent, by the tier that served them (fill is a miss being filled).",
		}, []string{"tier"}),
		tokenRejects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fillcast_appliance_token_rejects_total",
			Help: "Requests refused for a missing, bad or expired token.",
		}),
		forbidden: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_appliance_forbidden_total",
			Help: "Requests answered 403, by reason (auth.RejectReason, missing_pass, or auth.LimitReason: rendition, download).",
		}, []string{"reason"}),
		cmcdErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fillcast_appliance_cmcd_malformed_total",
			Help: "Content requests whose CMCD (query parameter or CMCD-* headers) could not be read: recorded without it.",
		}),
		byCode: map[int]prometheus.Counter{},
	}
	for t := cache.TierMemory; t <= cache.TierFill; t++ {
		m.byTier[t] = m.sentBytes.WithLabelValues(t.String())
	}
	for _, c := range []int{200, 204, 206, 304, 400, 403, 404, 405, 408, 413, 414, 416, 431, 502, 503, 504} {
		m.byCode[c] = m.requests.WithLabelValues(strconv.Itoa(c))
	}
	return m
}

func (m *metrics) observe(code int, tier cache.Tier, bytes int64) {
	m.mu.RLock()
	c, ok := m.byCode[code]
	m.mu.RUnlock()
	if !ok {
		c = m.requests.WithLabelValues(strconv.Itoa(code))
		m.mu.Lock()
		m.byCode[code] = c
		m.mu.Unlock()
	}
	c.Inc()
	if bytes > 0 {
		m.byTier[tier].Add(float64(bytes))
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.sentBytes.Describe(ch)
	m.tokenRejects.Describe(ch)
	m.forbidden.Describe(ch)
	m.cmcdErrors.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.sentBytes.Collect(ch)
	m.tokenRejects.Collect(ch)
	m.forbidden.Collect(ch)
	m.cmcdErrors.Collect(ch)
}
