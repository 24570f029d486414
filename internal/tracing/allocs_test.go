//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package tracing

import "testing"

// TestTraceIDAllocs: reading the trace id of a header, valid or not,
// allocates nothing.
func TestTraceIDAllocs(t *testing.T) {
	for _, in := range []string{
		"00-" + specTraceID + "-" + specParentID + "-01",
		"00-00000000000000000000000000000000-" + specParentID + "-01",
		"garbage",
	} {
		if n := testing.AllocsPerRun(100, func() { TraceID(in) }); n != 0 {
			t.Errorf("TraceID(%q): %v allocations, want 0", in, n)
		}
	}
}
