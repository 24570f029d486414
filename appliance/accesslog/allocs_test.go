//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package accesslog

import (
	"net/netip"
	"testing"
	"time"
)

// TestAddAllocs: adding a line, as the hit path does, allocates nothing
// once the buffers have their working size, flushes included.
func TestAddAllocs(t *testing.T) {
	l, err := New(Config{FlushBytes: 4 << 10}, Deps{W: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{Time: at, Duration: 87 * time.Microsecond, Client: netip.MustParseAddr("203.0.113.9"), Method: "GET",
		Path: "/c/k1.1767650000.AAAA.sig/t1/720p/seg-00001.m4s", Status: 200, Bytes: 1500000, Cache: "HIT-memory",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	n := testing.AllocsPerRun(1000, func() {
		l.Add(e)
		if l.Stats().Lines%50 == 0 {
			l.Flush()
		}
	})
	if n != 0 {
		t.Errorf("Add: %v allocations per line, want 0", n)
	}
}
