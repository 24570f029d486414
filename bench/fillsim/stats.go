package main

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/bench/cachesim/trace"
)

// counts are the bytes and requests of one simulated hour.
type counts struct {
	bytes, hitBytes int64 // served to players, and of those from an appliance's cache
	reqs, hits      int64
	errors          int64 // requests no URL answered
	originBytes     int64 // sent by the origin, to appliances or players
}

func (c *counts) add(o counts) {
	c.bytes += o.bytes
	c.hitBytes += o.hitBytes
	c.reqs += o.reqs
	c.hits += o.hits
	c.errors += o.errors
	c.originBytes += o.originBytes
}

// byteHitRatio is the share of the bytes served from an appliance's cache.
func (c counts) byteHitRatio() float64 {
	if c.bytes == 0 {
		return 0
	}
	return float64(c.hitBytes) / float64(c.bytes)
}

// ledger holds counts per simulated day and hour.
type ledger struct {
	start time.Time // midnight of day 0
	mu    sync.Mutex
	hours [][24]counts
}

func newLedger(start time.Time, days int) *ledger {
	return &ledger{start: start, hours: make([][24]counts, days)}
}

// add adds c to the hour at falls in; times outside the days are dropped.
func (l *ledger) add(at time.Time, c counts) {
	d := at.Sub(l.start)
	day, hour := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if d < 0 || day >= len(l.hours) {
		return
	}
	l.mu.Lock()
	l.hours[day][hour].add(c)
	l.mu.Unlock()
}

// sum adds up the hours of days [from, to) that keep says to.
func (l *ledger) sum(from, to int, keep func(hour int) bool) counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	var c counts
	for d := from; d < min(to, len(l.hours)); d++ {
		for h := range 24 {
			if keep(h) {
				c.add(l.hours[d][h])
			}
		}
	}
	return c
}

func peak(h int) bool  { return trace.PeakHours(h) }
func anyHour(int) bool { return true }

// inWindow reports whether hour h starts inside the site's fill window
// (which does not span midnight here; ParseWindow has checked it parses).
func inWindow(h int) bool {
	start, end, _ := fillcast.ParseWindow(site.FillWindow)
	return h*60 >= start && h*60 < end
}

// originCounter wraps the origin's handler to count the body bytes it
// sends, by the simulated hour they were sent in.
type originCounter struct {
	h      http.Handler
	clock  *simClock
	ledger *ledger
}

func newOriginCounter(h http.Handler, clock *simClock, l *ledger) *originCounter {
	return &originCounter{h: h, clock: clock, ledger: l}
}

func (o *originCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cw := &countingWriter{ResponseWriter: w}
	o.h.ServeHTTP(cw, r)
	o.ledger.add(o.clock.Now(), counts{originBytes: cw.n})
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps the origin's sendfile (io.Copy in http.ServeContent).
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}
