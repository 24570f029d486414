package protect

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// newBreaker returns a breaker of cfg counting in a fresh registry.
func newBreaker(t *testing.T, cfg BreakerConfig) (*Breaker, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBreaker("origin", cfg, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b, reg
}

// outcomes makes one call through b per entry of fails, failing it when
// the entry is true.
func outcomes(t *testing.T, b *Breaker, fails ...bool) {
	t.Helper()
	for i, fail := range fails {
		done, _, ok := b.Allow()
		if !ok {
			t.Fatalf("call %d refused", i)
		}
		done(!fail)
	}
}

// repeat returns n copies of fail.
func repeat(n int, fail bool) []bool {
	s := make([]bool, n)
	for i := range s {
		s[i] = fail
	}
	return s
}

// trip opens b (MinRequests at most 10) and returns when it did.
func trip(t *testing.T, b *Breaker) time.Time {
	t.Helper()
	at := time.Now()
	outcomes(t, b, repeat(10, true)...)
	if got := b.State(); got != Open {
		t.Fatalf("after 10 failures: %v, want open", got)
	}
	return at
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// metricValue returns the value of the series of name with labels in
// reg, failing t when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	if len(m.GetLabel()) != len(labels) {
		return false
	}
	for _, l := range m.GetLabel() {
		if labels[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

// wantConfigError checks a Validate result: nil when field is "", else a
// protect ConfigError on field.
func wantConfigError(t *testing.T, err error, field string) {
	t.Helper()
	var ce *fillcast.ConfigError
	switch {
	case field == "" && err != nil:
		t.Errorf("Validate() = %v, want nil", err)
	case field != "" && (!errors.As(err, &ce) || ce.Field != field || ce.Pkg != "protect"):
		t.Errorf("Validate() = %v, want a protect ConfigError on %s", err, field)
	}
}
