//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package byterange

import (
	"testing"
)

func TestParseAllocs(t *testing.T) {
	h := []byte("bytes=100-200")
	if n := testing.AllocsPerRun(100, func() { Parse(h, 1000) }); n != 0 {
		t.Errorf("Parse allocates %v times, want 0", n)
	}
}
