package opsindex

import (
	"fmt"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"
)

// benchEvents returns n events over the last 24 hours, oldest first:
// 2,000 titles of which title-rare has one event in 10,000, 50
// appliances, 20 sites, 20,000 users, a mix of types.
func benchEvents(n int) []events.Event {
	types := []string{events.TypeQoE, events.TypeQoE, events.TypeQoE, events.TypeProgress, events.TypeProgress,
		events.TypePlay, events.TypeImpression, events.TypeClick, events.TypeSearch, events.TypeError}
	out := make([]events.Event, n)
	for i := range out {
		title := fmt.Sprint("title-", i*7919%2000)
		if i%10_000 == 5_000 {
			title = "title-rare"
		}
		out[i] = events.Event{ID: fmt.Sprint("e", i), User: fmt.Sprint("user-", i*104729%20_000), Type: types[i%len(types)], Title: title,
			Site: fmt.Sprint("site-", i%20), Appliance: fmt.Sprint("app-", i/7%50), PlayedS: 10, BitrateKbps: 2400,
			TS: t0.Add(-24*time.Hour + 1 + time.Duration(i)*(24*time.Hour/time.Duration(n)))}
	}
	return out
}

// full returns an index holding 200,000 events of the last day.
func full(b *testing.B) *Index {
	x, _ := newIndex(b, Config{})
	evs := benchEvents(200_000)
	for i := 0; i < len(evs); i += 100 {
		x.Apply(uint64(i/100+1), evs[i:i+100])
	}
	if x.Len() != 200_000 {
		b.Fatalf("Len = %d", x.Len())
	}
	return x
}

// BenchmarkApply indexes batches of 100 events into a full index, each
// evicting the 100 oldest.
func BenchmarkApply(b *testing.B) {
	x := full(b)
	batches := make([][]events.Event, 100)
	more := benchEvents(len(batches) * 100)
	for i := range batches {
		batches[i] = more[i*100 : (i+1)*100]
		for j := range batches[i] {
			batches[i][j].TS = t0
		}
	}
	seq := x.Applied()
	b.ReportAllocs()
	for b.Loop() {
		seq++
		x.Apply(seq, batches[seq%uint64(len(batches))])
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkSearch(b *testing.B) {
	x := full(b)
	for _, bc := range []struct {
		name string
		q    Query
	}{
		{"rare title", Query{Title: "title-rare"}},
		{"title", Query{Title: "title-7"}},
		{"user", Query{User: "user-42"}},
		{"errors of an appliance", Query{Type: events.TypeError, Appliance: "app-7"}},
		{"errors of an appliance last 15m", Query{Type: events.TypeError, Appliance: "app-7", SinceAgo: 15 * time.Minute}},
		{"latest 100", Query{}},
		{"qoe (60k matches)", Query{Type: events.TypeQoE}},
		{"everything last hour", Query{SinceAgo: time.Hour}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var r Result
			for b.Loop() {
				r = x.Search(bc.q)
			}
			b.ReportMetric(float64(r.TotalMatched), "matched")
		})
	}
}
