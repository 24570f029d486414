package steering

import (
	"math"
	"testing"
	"time"
)

func TestCounter(t *testing.T) {
	t.Parallel()
	d := newDecay(time.Unix(0, 0), 6400*time.Millisecond) // 100 ms ticks
	tests := []struct {
		name      string
		adds      []uint32 // ticks of +1
		read      uint32
		want      float32
		tolerance float32
	}{
		{"fresh", []uint32{10, 10, 10}, 10, 3, 0},
		{"one half-life", []uint32{10, 10}, 10 + ticksPerHalfLife, 1, 1e-6},
		{"two half-lives", []uint32{0, 0, 0, 0}, 2 * ticksPerHalfLife, 1, 1e-6},
		{"adds decay in between", []uint32{0, ticksPerHalfLife}, ticksPerHalfLife, 1.5, 1e-6},
		{"forgotten", []uint32{0}, ticksPerHalfLife * halfLives, 0, 0},
		{"reader slightly behind a writer", []uint32{100}, 99, 1, 0},
		{"writer behind the last update", []uint32{100, 99}, 100, 2, 0},
		{"across the tick wrap", []uint32{math.MaxUint32}, ticksPerHalfLife - 1, 0.5, 1e-6},
		{"idle for ages", []uint32{5}, 1 << 31, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c counter
			for _, at := range tc.adds {
				c.add(&d, at, 1)
			}
			got := c.value(&d, tc.read)
			if diff := got - tc.want; diff > tc.tolerance || -diff > tc.tolerance {
				t.Errorf("value at tick %d = %v; want %v", tc.read, got, tc.want)
			}
		})
	}
}

func TestTick(t *testing.T) {
	t.Parallel()
	epoch := time.Unix(1000, 0)
	d := newDecay(epoch, 6400*time.Millisecond)
	tests := []struct {
		at   time.Time
		want uint32
	}{
		{epoch, 0},
		{epoch.Add(-time.Hour), 0},
		{epoch.Add(99 * time.Millisecond), 0},
		{epoch.Add(250 * time.Millisecond), 2},
	}
	for _, tc := range tests {
		if got := d.tick(tc.at); got != tc.want {
			t.Errorf("tick(%v) = %d; want %d", tc.at.Sub(epoch), got, tc.want)
		}
	}
}
