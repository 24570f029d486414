package steering

import (
	"math"
	"sync/atomic"
	"time"
)

// ticksPerHalfLife sets the resolution of the decay: a counter loses at
// most 1/64 of a half-life of precision, and the factor table has one
// entry per tick until the factor is negligible.
const (
	ticksPerHalfLife = 64
	halfLives        = 24 // 2^-24: after this a count is as good as zero
)

// decay turns clock readings into ticks and holds the factor by which a
// count shrinks after a number of ticks, so reading a counter costs an
// atomic load and a table lookup instead of an exponential.
type decay struct {
	epoch  time.Time
	tickNS int64
	factor [ticksPerHalfLife * halfLives]float32
}

func newDecay(epoch time.Time, halfLife time.Duration) decay {
	d := decay{epoch: epoch, tickNS: int64(halfLife) / ticksPerHalfLife}
	if d.tickNS < 1 {
		d.tickNS = 1
	}
	for i := range d.factor {
		d.factor[i] = float32(math.Exp2(-float64(i) / ticksPerHalfLife))
	}
	return d
}

// tick returns the tick of t, counted from the Steerer's creation; a
// reading before it (a clock stepping back) counts as tick 0. Ticks wrap
// after 2^32 (ten years at the default half-life, 18 hours at the
// shortest); ages are computed modulo 2^32, so a counter idle for longer
// than that still reads as zero but for a chance below one in a million.
func (d *decay) tick(t time.Time) uint32 {
	ns := int64(t.Sub(d.epoch))
	if ns <= 0 {
		return 0
	}
	return uint32(ns / d.tickNS)
}

// skew is how many ticks a counter's last update may be ahead of a
// reader's clock (goroutines read the clock at slightly different times).
const skew = 1024

// ahead reports whether tick from is after now, by less than skew.
func ahead(from, now uint32) bool { return from-now-1 < skew }

// at returns the factor for a count last updated at tick from, read at now.
func (d *decay) at(from, now uint32) float32 {
	if ahead(from, now) {
		return 1
	}
	age := now - from
	if age >= uint32(len(d.factor)) {
		return 0
	}
	return d.factor[age]
}

// counter is an exponentially decaying count of players sent to one
// appliance, updated lock-free by concurrent steering calls. The tick of
// the last update and the count at that tick share one word (tick in the
// high 32 bits, float32 count in the low) so they change together.
type counter struct {
	w atomic.Uint64
}

func pack(tick uint32, v float32) uint64 { return uint64(tick)<<32 | uint64(math.Float32bits(v)) }

func unpack(w uint64) (uint32, float32) { return uint32(w >> 32), math.Float32frombits(uint32(w)) }

// value returns the count decayed to tick now.
func (c *counter) value(d *decay, now uint32) float32 {
	t, v := unpack(c.w.Load())
	return v * d.at(t, now)
}

// add decays the count to tick now and adds n.
func (c *counter) add(d *decay, now uint32, n float32) {
	for {
		old := c.w.Load()
		t, v := unpack(old)
		nt := now
		if v != 0 && ahead(t, now) { // keep the later tick; the count is current then
			nt = t
		}
		if c.w.CompareAndSwap(old, pack(nt, v*d.at(t, now)+n)) {
			return
		}
	}
}
