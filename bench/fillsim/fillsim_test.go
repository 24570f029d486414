package main

import (
	"testing"
	"time"

	"github.com/fillcast/fillcast/bench/cachesim/trace"
)

// TestSimClock is not parallel: it reads the wall clock just after Start.
func TestSimClock(t *testing.T) {
	origin := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	c := newSimClock(origin, 24*time.Second) // one simulated hour a second
	if got := c.Now(); !got.Equal(origin) {
		t.Errorf("before Start, Now() = %v, want %v", got, origin)
	}
	c.Start()
	tests := []struct {
		sim  time.Duration
		wall time.Duration
	}{
		{0, 0},
		{time.Hour, time.Second},
		{24 * time.Hour, 24 * time.Second},
	}
	for _, tt := range tests {
		if got := c.Wall(origin.Add(tt.sim)).Sub(c.started); got != tt.wall {
			t.Errorf("Wall(+%v) = start+%v, want start+%v", tt.sim, got, tt.wall)
		}
		if got := c.WallSpan(tt.sim); got != tt.wall {
			t.Errorf("WallSpan(%v) = %v, want %v", tt.sim, got, tt.wall)
		}
	}
	if now := c.Now(); now.Before(origin) || now.After(origin.Add(time.Hour)) {
		t.Errorf("just after Start, Now() = %v, want within a simulated hour of %v", now, origin)
	}
}

func TestLedger(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	l := newLedger(start, 2)
	tests := []struct {
		at    time.Duration
		bytes int64
	}{
		{20 * time.Hour, 1},                // day 1, peak
		{3 * time.Hour, 10},                // day 1, fill window
		{24*time.Hour + 21*time.Hour, 100}, // day 2, peak
		{-time.Hour, 1000},                 // before the start: dropped
		{48 * time.Hour, 10000},            // after the end: dropped
	}
	for _, tt := range tests {
		l.add(start.Add(tt.at), counts{bytes: tt.bytes, hitBytes: tt.bytes / 10})
	}
	checks := []struct {
		name     string
		from, to int
		keep     func(int) bool
		want     int64
	}{
		{"all", 0, 2, anyHour, 111},
		{"peak", 0, 2, peak, 101},
		{"second day's peak", 1, 2, peak, 100},
		{"window", 0, 2, inWindow, 10},
	}
	for _, c := range checks {
		if got := l.sum(c.from, c.to, c.keep).bytes; got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, got, c.want)
		}
	}
	if got := l.sum(1, 2, peak).byteHitRatio(); got != 0.1 {
		t.Errorf("byte hit ratio %v, want 0.1", got)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	tr := &trace.Trace{Config: trace.Config{SegmentDuration: time.Minute}, Sessions: []trace.Session{
		{Start: 0, Title: 0, First: 2, Count: 3},
		{Start: 90 * time.Second, Title: 1, First: 0, Count: 2},
	}}
	got := events(tr, 150*time.Second)
	want := []event{{0, 0, 2}, {time.Minute, 0, 3}, {90 * time.Second, 1, 0}, {2 * time.Minute, 0, 4}}
	if len(got) != len(want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %v, want %v", i, got[i], want[i])
		}
	}
}
