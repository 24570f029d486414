//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package contentsteering

import (
	"testing"
	"time"
)

// TestAppendJSONAllocs: a manifest without a reload URI (whose check
// parses it) is written into a buffer with room without allocating.
func TestAppendJSONAllocs(t *testing.T) {
	m := Manifest{TTL: 10 * time.Second, Pathways: []Pathway{{ID: "oca-1", Host: "10.0.0.1:8080"}, {ID: "origin", Host: "origin.example"}, {ID: "."}}}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(200, func() { buf, _ = m.AppendJSON(buf[:0]) }); n != 0 {
		t.Errorf("AppendJSON: %v allocations, want 0", n)
	}
}
