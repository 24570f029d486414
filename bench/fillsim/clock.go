package main

import (
	"sync"
	"time"
)

// simClock is the time-compressed clock handed to the parts that judge
// the time of day (the planner, its popularity tracker and the fill
// executors): one simulated day passes in Day of wall time. Until Start it
// stands still at the simulation's beginning, so setup takes no simulated
// time.
type simClock struct {
	origin time.Time // simulated time at Start
	scale  float64   // simulated per wall nanosecond

	mu      sync.Mutex
	started time.Time // wall time of Start; zero before
}

func newSimClock(origin time.Time, day time.Duration) *simClock {
	return &simClock{origin: origin, scale: float64(24*time.Hour) / float64(day)}
}

// Start sets the clock going.
func (c *simClock) Start() {
	c.mu.Lock()
	c.started = time.Now()
	c.mu.Unlock()
}

// Now returns the simulated time.
func (c *simClock) Now() time.Time {
	c.mu.Lock()
	s := c.started
	c.mu.Unlock()
	if s.IsZero() {
		return c.origin
	}
	return c.origin.Add(time.Duration(float64(time.Since(s)) * c.scale))
}

// Wall returns the wall time at which the clock reads sim.
func (c *simClock) Wall(sim time.Time) time.Time {
	c.mu.Lock()
	s := c.started
	c.mu.Unlock()
	return s.Add(time.Duration(float64(sim.Sub(c.origin)) / c.scale))
}

// WallSpan converts a simulated span into wall time.
func (c *simClock) WallSpan(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.scale)
}
