//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package latency

import (
	"testing"
	"time"
)

// TestRecordAllocs: recording, as the hit path does, allocates nothing;
// nor does reading a p99 from two snapshots, as the agent does.
func TestRecordAllocs(t *testing.T) {
	var h Histogram
	d := time.Duration(0)
	if n := testing.AllocsPerRun(1000, func() { h.Record(d); d += 13 * time.Millisecond }); n != 0 {
		t.Errorf("Record: %v allocations, want 0", n)
	}
	prev := h.Snapshot()
	if n := testing.AllocsPerRun(100, func() { s := h.Snapshot(); d := s.Sub(prev); d.Quantile(0.99) }); n != 0 {
		t.Errorf("Snapshot, Sub, Quantile: %v allocations, want 0", n)
	}
}
