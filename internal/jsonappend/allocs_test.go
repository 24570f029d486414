//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package jsonappend

import "testing"

// TestStringAllocs: a string that needs every kind of escape is
// appended to a buffer with room without allocating.
func TestStringAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	s := "q\"uote\\back\nline\x01ctl\u00e9"
	if n := testing.AllocsPerRun(100, func() { buf = String(buf[:0], s) }); n != 0 {
		t.Errorf("String into a buffer with room: %v allocations, want 0", n)
	}
}
