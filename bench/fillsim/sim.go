package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance"
	"github.com/fillcast/fillcast/bench/cachesim/trace"
)

// result is what one run measured.
type result struct {
	fills    bool
	ledger   *ledger
	recorded []served
	status   map[string]appliance.Status
	lagMax   time.Duration
	late     int
	wall     time.Duration
	setup    time.Duration // starting the parts and registering the catalog
	lastErr  string
}

// simulate runs the days of tr once on a fresh system.
func simulate(ctx context.Context, s setup, o options, tr *trace.Trace, catalog []fillcast.Title) (*result, error) {
	t0 := time.Now()
	s.clock = newSimClock(tr.Config.Start, o.day)
	s.ledger = newLedger(tr.Config.Start, o.days)
	sys, err := start(ctx, s, catalog)
	if err != nil {
		return nil, err
	}
	p := newPlayers(sys, tr, catalog, o.workers)
	setupTime := time.Since(t0)
	s.clock.Start()
	runErr := p.Run(ctx, o.days)
	r := &result{fills: s.fills, ledger: s.ledger, recorded: p.recorded, status: map[string]appliance.Status{},
		lagMax: p.lagMax, late: p.late, setup: setupTime, lastErr: p.lastErr}
	for id := range sys.Appliances {
		st, err := sys.status(ctx, id)
		if err != nil {
			runErr = errors.Join(runErr, err)
		}
		r.status[id] = st
	}
	if err := errors.Join(runErr, sys.Stop()); err != nil {
		return nil, err
	}
	r.wall = time.Since(t0)
	return r, nil
}

func (r *result) mode() string {
	if r.fills {
		return "fills on"
	}
	return "fills off (pull-through)"
}

// print shows a run's days.
func (r *result) print(w io.Writer, o options) {
	fmt.Fprintf(w, "== %s: %v of wall time (%v to start and register the catalog); requests sent up to %v late (%d more than a simulated minute late)\n",
		r.mode(), r.wall.Round(time.Second), r.setup.Round(time.Second), r.lagMax.Round(time.Millisecond), r.late)
	fmt.Fprintf(w, "%-4s %12s %14s %12s %13s %15s %8s\n", "day", "served_MB", "peak_served_MB", "origin_MB", "peak_origin_MB", "peak_byte_hit", "errors")
	for d := range o.days {
		all, pk := r.ledger.sum(d, d+1, anyHour), r.ledger.sum(d, d+1, peak)
		mark := ""
		if d < o.warmup {
			mark = " (warm-up)"
		}
		fmt.Fprintf(w, "%-4d %12.1f %14.1f %12.1f %13.1f %15.4f %8d%s\n", d+1, mb(all.bytes), mb(pk.bytes), mb(all.originBytes), mb(pk.originBytes),
			pk.byteHitRatio(), all.errors, mark)
	}
	by := map[string]int64{}
	var total int64
	for _, q := range r.recorded {
		by[q.by] += q.size
		total += q.size
	}
	if total > 0 {
		fmt.Fprintf(w, "bytes served by flash1 %.1f %%, storage1 %.1f %%, the origin (fallback) %.1f %%\n",
			100*float64(by["flash1"])/float64(total), 100*float64(by["storage1"])/float64(total), 100*float64(by["origin"])/float64(total))
	}
	if r.lastErr != "" {
		fmt.Fprintf(w, "last request error: %s\n", r.lastErr)
	}
	for _, id := range []string{"flash1", "storage1"} {
		st := r.status[id]
		if st.Plan == nil {
			continue
		}
		fmt.Fprintf(w, "%-9s manifest v%d, planned %.1f MB, present %.1f MB, filled %.1f MB, outside the window %d B, failures %d, disk used %.1f MB\n",
			id, st.Plan.ManifestVersion, mb(st.Plan.PlannedBytes), mb(st.Plan.PresentBytes), mb(st.Plan.FilledBytes),
			st.Plan.OutsideWindowBytes, st.Plan.Failures, mb(st.Disk.UsedBytes))
	}
	fmt.Fprintln(w)
}

// report compares the runs and prints the figures, the last line last.
func report(w io.Writer, o options, s setup, on, off *result) error {
	onPeak, offPeak := on.ledger.sum(o.warmup, o.days, peak), off.ledger.sum(o.warmup, o.days, peak)
	onAll := on.ledger.sum(o.warmup, o.days, anyHour)
	if offPeak.originBytes == 0 || onPeak.bytes == 0 {
		return fmt.Errorf("fillsim: nothing measured at peak (origin %d B without fills, %d B served with fills)", offPeak.originBytes, onPeak.bytes)
	}
	reduction := 1 - float64(onPeak.originBytes)/float64(offPeak.originBytes)
	var outside int64
	for _, st := range on.status {
		if st.Plan == nil {
			return errors.New("fillsim: an appliance reported no fill status")
		}
		outside += st.Plan.OutsideWindowBytes
	}
	fmt.Fprintf(w, "== days %d-%d, peak hours 19:00-23:00\n", o.warmup+1, o.days)
	fmt.Fprintf(w, "origin bytes at peak: %.1f MB with fills, %.1f MB without: %.1f %% less\n", mb(onPeak.originBytes), mb(offPeak.originBytes), 100*reduction)
	fmt.Fprintf(w, "byte hit ratio at peak: %.4f with fills, %.4f without; all day with fills %.4f\n",
		onPeak.byteHitRatio(), offPeak.byteHitRatio(), onAll.byteHitRatio())
	fmt.Fprintf(w, "origin bytes in the fill window with fills: %.1f MB (fills), outside it %.1f MB\n",
		mb(on.ledger.sum(o.warmup, o.days, inWindow).originBytes), mb(on.ledger.sum(o.warmup, o.days, func(h int) bool { return !inWindow(h) }).originBytes))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "== cache policies on the recorded requests of the pull-through run")
	var flash []served
	for _, r := range off.recorded {
		if r.by == "flash1" {
			flash = append(flash, r)
		}
	}
	comparePolicies(w, "the flash appliance's requests", flash, s.flashBytes, true)
	comparePolicies(w, "the whole site's requests, one cache of the flash size", off.recorded, s.flashBytes, false)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "peak_origin_reduction=%.4f peak_byte_hit_ratio=%.4f fill_outside_window_bytes=%d\n", reduction, onPeak.byteHitRatio(), outside)
	return nil
}

func mb(n int64) float64 { return float64(n) / 1e6 }
