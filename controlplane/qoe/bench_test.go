package qoe

import (
	"fmt"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"
)

// benchBatch is 100 events as players post them: a tenth plays, a tenth
// fatal errors, the rest qoe events (a tenth of them a first one), over
// 1000 titles, 20 sites and 50 appliances.
func benchBatch(n int, at time.Time) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		title, site, app := fmt.Sprint("title-", i*7919%1000), fmt.Sprint("site-", i%20), fmt.Sprint("app-", i%50)
		switch {
		case i%10 == 0:
			out[i] = play(title, site, at)
		case i%10 == 1:
			out[i] = fatal(title, site, app, at)
		default:
			startup := 0.0
			if i%10 == 2 {
				startup = float64(300 + i*37%4000)
			}
			out[i] = qoe(title, site, app, startup, 10, float64(i%3)*100, float64(1000+i*13%5000), at)
		}
	}
	return out
}

func BenchmarkApply(b *testing.B) {
	tr, c := newTracker(b, Config{})
	batches := make([][]events.Event, 64)
	for i := range batches {
		batches[i] = benchBatch(100, t0)
		for j := range batches[i] { // spread the keys over the batches
			batches[i][j].Title = fmt.Sprint(batches[i][j].Title, "-", i)
		}
	}
	var seq uint64
	b.ReportAllocs()
	for b.Loop() {
		seq++
		if seq%10_000 == 0 { // the window moves on now and then
			c.Set(c.Now().Add(time.Minute))
		}
		batch := batches[seq%uint64(len(batches))]
		for i := range batch {
			batch[i].TS = c.Now()
		}
		tr.Apply(seq, batch)
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkReport(b *testing.B) {
	tr, _ := newTracker(b, Config{})
	for i := range 100 {
		batch := benchBatch(100, t0)
		for j := range batch {
			batch[j].Title = fmt.Sprint(batch[j].Title, "-", i%10)
		}
		tr.Apply(uint64(i+1), batch)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Report(DimTitle, 50)
	}
}

// BenchmarkExpire measures the pause when a full minute leaves the
// window (10,000 keys in each dimension, every minute) with the report
// of the 10,000 titles that follows it.
func BenchmarkExpire(b *testing.B) {
	tr, c := newTracker(b, Config{})
	fill := func(seq uint64) {
		batch := make([]events.Event, 10_000)
		for i := range batch {
			k := fmt.Sprint(i)
			batch[i] = qoe("t"+k, "s"+k, "a"+k, 500, 10, 1, 1000, c.Now())
		}
		tr.Apply(seq, batch)
	}
	var seq uint64
	for ; seq < 15; seq++ {
		c.Set(t0.Add(time.Duration(seq) * time.Minute))
		fill(seq + 1)
	}
	for b.Loop() {
		b.StopTimer()
		seq++
		c.Set(t0.Add(time.Duration(seq) * time.Minute))
		b.StartTimer()
		tr.Report(DimTitle, -1)
		b.StopTimer()
		fill(seq)
		b.StartTimer()
	}
}
