package trace

import (
	"fmt"
	"testing"

	"github.com/fillcast/fillcast/appliance/evict"
)

// TestContenders: the replayers' policies, by name, replay a trace with a
// hot set and a scan of one-hit objects, and none beats Belady.
func TestContenders(t *testing.T) {
	t.Parallel()
	var trace []evict.Request
	for round := range 50 {
		for k := range 5 {
			trace = append(trace, evict.Request{Key: fmt.Sprintf("hot%d", k), Size: 10})
		}
		trace = append(trace, evict.Request{Key: fmt.Sprintf("scan%d", round), Size: 10})
	}
	cs := Contenders(60, trace)
	want := []string{"TinyLFU", "Interval", "S3-FIFO", "LRU", "Belady"}
	if len(cs) != len(want) {
		t.Fatalf("%d contenders, want %v", len(cs), want)
	}
	best := evict.Replay(cs[len(cs)-1].New(), 60, trace).ByteHitRatio()
	for i, c := range cs {
		if c.Name != want[i] {
			t.Errorf("contender %d is %q, want %q", i, c.Name, want[i])
		}
		if got := evict.Replay(c.New(), 60, trace).ByteHitRatio(); got > best || got <= 0 {
			t.Errorf("%s: byte hit ratio %.3f, want in (0, Belady's %.3f]", c.Name, got, best)
		}
	}
}
