package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// printPhase prints a phase's table: per class, the requests, the shares
// answered 2xx, 503 (shed) and 429 (rate-limited), other statuses and no
// answer, and the latency percentiles.
func printPhase(label string, p *phase, settled time.Duration, verbose bool) {
	fmt.Printf("%s, %s: %d req/s asked for %v, %.0f req/s sent (%d requests), last answer after %v (node idle %v before); %v; heartbeats failed %d of %d\n",
		label, p.name, p.rate, p.duration, p.sentRate(), p.all.requests, p.elapsed.Round(100*time.Millisecond), settled.Round(100*time.Millisecond), p.cpu, p.beatsFailed, p.beats)
	if p.sentRate() < minSentShare*float64(p.rate) {
		fmt.Printf("  vegeta sent %.0f %% of the rate asked: the load generator, not only the node, ran short of CPU\n", 100*p.sentRate()/float64(p.rate))
	}
	fmt.Printf("  %-16s %8s %9s %9s %9s %9s %9s %9s %9s\n", "class", "requests", "success", "shed", "limited", "other", "no answer", "p50", "p99")
	row := func(name string, s *stats) {
		fmt.Printf("  %-16s %8d %7.2f %% %7.2f %% %7.2f %% %7.2f %% %7.2f %% %9v %9v\n", name, s.requests, s.success(), s.pct(s.shed), s.pct(s.limited),
			s.pct(s.other), s.pct(s.noAnswer), round(s.quantile(0.5)), round(s.quantile(0.99)))
	}
	for c := range p.cls {
		if p.cls[c].requests > 0 {
			row(class(c).String(), &p.cls[c])
		}
	}
	row("all", &p.all)
	pb := &p.cls[playback]
	if pb.streamLimit > 0 {
		fmt.Printf("  playback: %d answers 429 \"stream limit\" (the bench's leases, not the node's protection)\n", pb.streamLimit)
	}
	if pb.originFirst > 0 {
		fmt.Printf("  playback: %d answers steered to the origin, not an appliance (heartbeats not heard in time)\n", pb.originFirst)
	}
	if verbose && len(p.all.errs) > 0 {
		errs := slices.SortedFunc(maps.Keys(p.all.errs), func(a, b string) int { return cmp.Compare(p.all.errs[b], p.all.errs[a]) })
		for _, e := range errs[:min(len(errs), 3)] {
			fmt.Printf("  no answer: %d × %s\n", p.all.errs[e], e)
		}
	}
}

// figure is one number the summary compares, taken from a node's run.
type figure struct {
	name  string
	get   func(r *nodeRun) float64
	unit  string // "%", "s" (a duration in seconds), "x" or "/s"
	ratio bool   // print on/off
}

var figures = []figure{
	{"requests sent a second at 3×", func(r *nodeRun) float64 { return r.overload.sentRate() }, "/s", true},
	{"playback success at capacity", func(r *nodeRun) float64 { return r.atCap.cls[playback].success() }, "%", false},
	{"playback success at 3×", func(r *nodeRun) float64 { return r.overload.cls[playback].success() }, "%", true},
	{"playback p99 unloaded", func(r *nodeRun) float64 { return r.unloaded.cls[playback].quantile(0.99).Seconds() }, "s", true},
	{"playback p99 at capacity", func(r *nodeRun) float64 { return r.atCap.cls[playback].quantile(0.99).Seconds() }, "s", true},
	{"playback p99 at 3×", func(r *nodeRun) float64 { return r.overload.cls[playback].quantile(0.99).Seconds() }, "s", true},
	{"playback p99 at 3× / unloaded p99", p99Ratio, "x", true},
	{"goodput at 3× (2xx a second, all)", func(r *nodeRun) float64 { return float64(r.overload.all.ok) / r.overload.duration.Seconds() }, "/s", true},
	{"playback 2xx a second at 3×", func(r *nodeRun) float64 { return float64(r.overload.cls[playback].ok) / r.overload.duration.Seconds() }, "/s", true},
	{"search success at 3×", func(r *nodeRun) float64 { return r.overload.cls[search].success() }, "%", false},
	{"search shed (503) at 3×", func(r *nodeRun) float64 { s := &r.overload.cls[search]; return s.pct(s.shed) }, "%", false},
	{"recommendations success at 3×", func(r *nodeRun) float64 { return r.overload.cls[recommendations].success() }, "%", false},
	{"recommendations shed (503) at 3×", func(r *nodeRun) float64 { s := &r.overload.cls[recommendations]; return s.pct(s.shed) }, "%", false},
	{"events success at 3×", func(r *nodeRun) float64 { return r.overload.cls[events].success() }, "%", false},
	{"events shed (503) at 3×", func(r *nodeRun) float64 { s := &r.overload.cls[events]; return s.pct(s.shed) }, "%", false},
	{"heartbeats failed at 3×", func(r *nodeRun) float64 { return float64(r.overload.beatsFailed) }, "", false},
}

func p99Ratio(r *nodeRun) float64 {
	u := r.unloaded.cls[playback].quantile(0.99)
	if u == 0 {
		return 0
	}
	return float64(r.overload.cls[playback].quantile(0.99)) / float64(u)
}

func (f figure) format(v float64) string {
	switch f.unit {
	case "%":
		return fmt.Sprintf("%.2f %%", v)
	case "s":
		return round(time.Duration(v * float64(time.Second))).String()
	case "x":
		return fmt.Sprintf("%.2f×", v)
	case "/s":
		return fmt.Sprintf("%.0f/s", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// printRound prints the lines for one round.
func printRound(n int, pair [2]*nodeRun) {
	on, off := pair[0], pair[1]
	pb := func(r *nodeRun) string {
		return fmt.Sprintf("success %.2f %%, p99 %v (%.2f× its unloaded %v)", r.overload.cls[playback].success(),
			round(r.overload.cls[playback].quantile(0.99)), p99Ratio(r), round(r.unloaded.cls[playback].quantile(0.99)))
	}
	fmt.Printf("\nround %d, playback at 3×: protection on %s; off %s\n\n", n, pb(on), pb(off))
}

// summary prints every figure for protection on and off, the medians
// over the rounds with each round's value, and the ratio of the medians;
// then the targets, for protection on.
func summary(o options, capacity int, runs [][2]*nodeRun) {
	fmt.Printf("summary: capacity %d req/s, 3× = %d req/s, mix %s; medians over %d round(s)", capacity, overload*capacity, o.mix, len(runs))
	if len(runs) > 1 {
		fmt.Print(", each round's value in brackets")
	}
	fmt.Println()
	fmt.Printf("  %-36s %-30s %-30s %s\n", "", "protection on", "protection off", "on/off")
	med := func(f figure, side int) (float64, string) {
		var vs []float64
		for _, p := range runs {
			vs = append(vs, f.get(p[side]))
		}
		m := median(vs)
		s := f.format(m)
		if len(vs) > 1 {
			parts := make([]string, len(vs))
			for i, v := range vs {
				parts[i] = strings.TrimSuffix(strings.TrimSuffix(f.format(v), " %"), "/s")
			}
			s += " [" + strings.Join(parts, " ") + "]"
		}
		return m, s
	}
	for _, f := range figures {
		von, son := med(f, 0)
		voff, soff := med(f, 1)
		ratio := ""
		if f.ratio && voff != 0 {
			ratio = fmt.Sprintf("%.3g", von/voff)
		}
		fmt.Printf("  %-36s %-30s %-30s %s\n", f.name, son, soff, ratio)
	}
	var ons, offs []*nodeRun
	for _, p := range runs {
		ons, offs = append(ons, p[0]), append(offs, p[1])
	}
	mOn := func(f func(*nodeRun) float64) float64 { return medianOf(ons, f) }
	mOff := func(f func(*nodeRun) float64) float64 { return medianOf(offs, f) }
	pbSuccess := func(r *nodeRun) float64 { return r.overload.cls[playback].success() }
	shed := func(c class) func(*nodeRun) float64 {
		return func(r *nodeRun) float64 { s := &r.overload.cls[c]; return s.pct(s.shed) }
	}
	fmt.Printf("\ntargets at 3× capacity, protection on (medians; reported, not asserted):\n")
	s := mOn(pbSuccess)
	fmt.Printf("%s  playback success >= %.0f %%: %.2f %% (protection off: %.2f %%)\n", verdict(s >= targetSuccess), targetSuccess, s, mOff(pbSuccess))
	r := mOn(p99Ratio)
	fmt.Printf("%s  playback p99 <= %.0f× its unloaded p99: %.2f× (protection off: %.2f×)\n", verdict(r > 0 && r <= targetP99Ratio), targetP99Ratio, r, mOff(p99Ratio))
	shedOn := mOn(shed(search)) + mOn(shed(recommendations)) + mOn(shed(events))
	fmt.Printf("%s  lower classes shed: search %.1f %%, recommendations %.1f %%, events %.1f %% answered 503 (protection off: %.1f %%, %.1f %%, %.1f %%)\n",
		verdict(shedOn > 0), mOn(shed(search)), mOn(shed(recommendations)), mOn(shed(events)), mOff(shed(search)), mOff(shed(recommendations)), mOff(shed(events)))
}

func medianOf(rs []*nodeRun, f func(*nodeRun) float64) float64 {
	vs := make([]float64, len(rs))
	for i, r := range rs {
		vs[i] = f(r)
	}
	return median(vs)
}

// median of xs; the lower middle of an even count.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// round keeps three or so significant digits of a latency.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
