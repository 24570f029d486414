//go:build !race

// Allocation counts are checked without the race detector, whose
// instrumentation allocates; make test runs them in a second pass.

package api

import (
	"testing"

	"github.com/fillcast/fillcast"
)

// TestPlaybackEncodeAllocs: the busiest route's encoder writes into the
// pooled buffer without allocating.
func TestPlaybackEncodeAllocs(t *testing.T) {
	p := fillcast.Playback{Title: "t1", Protocol: "hls", URLs: []string{"http://a:1/c/tok/t1/master.m3u8", "http://o/x"},
		SteeringURL: "http://cp/v1/steering/t1?protocol=hls", ExpiresAt: "2026-11-26T00:00:00Z"}
	buf := make([]byte, 0, 2048)
	if n := testing.AllocsPerRun(200, func() { buf = appendPlayback(buf[:0], &p) }); n != 0 {
		t.Errorf("appendPlayback: %v allocations, want 0", n)
	}
}
