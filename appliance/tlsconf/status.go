package tlsconf

import (
	"time"

	"github.com/fillcast/fillcast/appliance/tlsconf/ticketkeys"
	"github.com/prometheus/client_golang/prometheus"
)

// Status describes the served TLS configuration, for /v1/status.
type Status struct {
	// CertNotAfter is when the served certificate expires.
	CertNotAfter time.Time `json:"cert_not_after"`
	// OCSP is the stapling; nil when the certificate names no responder.
	OCSP *OCSPStatus `json:"ocsp,omitempty"`
	// TicketKeys are the shared session ticket keys; nil when the process
	// uses keys of its own (tickets do not survive an upgrade).
	TicketKeys *ticketkeys.Status `json:"ticket_keys,omitempty"`
	// FullHandshakes counts the handshakes that no session ticket
	// resumed, ResumedHandshakes those one did (HTTP/1.1 and HTTP/3).
	FullHandshakes    int64 `json:"full_handshakes"`
	ResumedHandshakes int64 `json:"resumed_handshakes"`
}

// OCSPStatus describes the OCSP staple.
type OCSPStatus struct {
	Responder string `json:"responder"`
	// Stapled is false when there is no good, current response (at start
	// until the first fetch, or after the responder failed past the last
	// one's NextUpdate, or said Revoked or Unknown).
	Stapled    bool      `json:"stapled"`
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	// AgeS is the staple's age: seconds since its ThisUpdate.
	AgeS int64 `json:"age_s,omitempty"`
	// LastError is the last fetch's problem; empty after a success.
	LastError string `json:"last_error,omitempty"`
}

// Status reports the served configuration; call it after Load.
func (s *Server) Status() Status {
	cur := s.cur.Load()
	st := Status{CertNotAfter: cur.leaf.NotAfter, FullHandshakes: s.full.Load(), ResumedHandshakes: s.resumed.Load()}
	if cur.responder != "" {
		o := &OCSPStatus{Responder: cur.responder, LastError: s.lastOCSPError()}
		if r := cur.staple; r != nil {
			o.Stapled, o.ThisUpdate, o.NextUpdate = true, r.ThisUpdate, r.NextUpdate
			o.AgeS = int64(s.d.Now().Sub(r.ThisUpdate).Seconds())
		}
		st.OCSP = o
	}
	if s.keys != nil {
		k := s.keys.Status()
		st.TicketKeys = &k
	}
	return st
}

// Collector returns the Prometheus metrics of s: handshakes (resumed or
// not), the certificate's expiry, the staple's age and next update, and
// the number of ticket keys.
func (s *Server) Collector() prometheus.Collector { return newCollector(s) }

type collector struct {
	s                                               *Server
	handshakes, notAfter, stapled, age, next, nKeys *prometheus.Desc
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("fillcast_appliance_tls_"+name, help, labels, nil)
	}
	return &collector{s: s,
		handshakes: d("handshakes_total", "TLS handshakes (HTTP/1.1 and HTTP/3), by whether a session ticket resumed them.", "resumed"),
		notAfter:   d("cert_not_after_timestamp_seconds", "When the served certificate expires."),
		stapled:    d("ocsp_stapled", "1 while a good, current OCSP response is stapled (absent when the certificate names no responder)."),
		age:        d("ocsp_staple_age_seconds", "Seconds since the stapled OCSP response's ThisUpdate."),
		next:       d("ocsp_next_update_timestamp_seconds", "NextUpdate of the stapled OCSP response: it is unstapled then unless refreshed."),
		nKeys:      d("ticket_keys", "Session ticket keys that decrypt (absent with keys of this process alone)."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.handshakes, c.notAfter, c.stapled, c.age, c.next, c.nKeys} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	ch <- prometheus.MustNewConstMetric(c.handshakes, prometheus.CounterValue, float64(st.FullHandshakes), "false")
	ch <- prometheus.MustNewConstMetric(c.handshakes, prometheus.CounterValue, float64(st.ResumedHandshakes), "true")
	gauge(c.notAfter, float64(st.CertNotAfter.Unix()))
	if o := st.OCSP; o != nil {
		if !o.Stapled {
			gauge(c.stapled, 0)
		} else {
			gauge(c.stapled, 1)
			gauge(c.age, float64(o.AgeS))
			gauge(c.next, float64(o.NextUpdate.Unix()))
		}
	}
	if k := st.TicketKeys; k != nil {
		gauge(c.nKeys, float64(k.Keys))
	}
}
