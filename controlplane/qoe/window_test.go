package qoe

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
)

// plays returns each key's plays in a dimension's report.
func plays(tr *Tracker, dim string) map[string]int64 {
	out := map[string]int64{}
	for _, r := range tr.Report(dim, 0) {
		out[r.Key] = r.Plays
	}
	return out
}

func equalPlays(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestWindow: figures cover the last Window minutes, by event time.
func TestWindow(t *testing.T) {
	tr, c := newTracker(t, Config{Window: 3 * time.Minute})
	min0 := t0.Truncate(time.Minute) // the clock's minute
	at := func(m int, s int) time.Time {
		return min0.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
	}
	tr.Apply(1, []events.Event{
		play("t1", "s1", at(0, 1)), play("t1", "s1", at(0, 59)),
		qoe("t1", "s1", "a1", 100, 10, 0, 1000, at(0, 5)),
		qoe("t1", "s1", "a1", 100, 10, 0, 1000, at(0, 6)),
		qoe("t1", "s1", "a1", 100, 10, 0, 1000, at(0, 7)),
		play("t0", "s1", at(-3, 0)),                   // before the window: dropped
		play("t2", "s1", at(-2, 0)),                   // the window's oldest minute
		play("t3", "s1", at(0, 0).Add(4*time.Minute)), // ahead of the clock: now
		play("t4", "", time.Time{}),                   // no ts: now
	})
	steps := []struct {
		clock time.Time
		apply []events.Event
		want  map[string]int64
		p50   float64 // t1's startup p50
	}{
		{at(0, 30), nil, map[string]int64{"t1": 3, "t2": 1, "t3": 1, "t4": 1}, 100},
		{at(1, 0), []events.Event{play("t1", "s1", at(1, 0)), qoe("t1", "s1", "a1", 5000, 10, 0, 1000, at(1, 1))},
			map[string]int64{"t1": 4, "t3": 1, "t4": 1}, 100}, // t2's minute is out
		{at(2, 59), nil, map[string]int64{"t1": 4, "t3": 1, "t4": 1}, 100},
		{at(3, 0), nil, map[string]int64{"t1": 1}, 5000}, // minute 0 is out
		{at(2, 0), nil, map[string]int64{"t1": 1}, 5000}, // the clock going back does not bring it back
		{at(4, 0), nil, map[string]int64{}, 0},
		{at(30, 0), []events.Event{play("t1", "s1", at(29, 0)), play("t5", "s1", at(30, 10))},
			map[string]int64{"t1": 1, "t5": 1}, 0},
	}
	for i, st := range steps {
		c.Set(st.clock)
		if st.apply != nil {
			tr.Apply(uint64(i+2), st.apply)
		}
		if got := plays(tr, DimTitle); !equalPlays(got, st.want) {
			t.Errorf("step %d at %v: plays %v, want %v", i, st.clock.Sub(min0), got, st.want)
		}
		var p50 float64
		for _, r := range tr.Report(DimTitle, 0) {
			if r.Key == "t1" {
				p50 = r.StartupP50MS
			}
		}
		if !near(p50, st.p50, StartupErrorBound) {
			t.Errorf("step %d: t1 startup p50 %g, want %g", i, p50, st.p50)
		}
	}
	// Every minute expired: nothing is left behind, in any dimension.
	c.Set(at(40, 0))
	snap := tr.Snapshot(0)
	if n := len(snap.Titles) + len(snap.Sites) + len(snap.Appliances); n != 0 {
		t.Errorf("after the window: %+v, want nothing", snap)
	}
	tr.mu.Lock()
	for d := range tr.totals {
		if len(tr.totals[d]) != 0 {
			t.Errorf("dimension %d keeps %d totals", d, len(tr.totals[d]))
		}
	}
	tr.mu.Unlock()
}

// TestReplay: replaying a day of the stream after a restart leaves only
// the window's events counted.
func TestReplay(t *testing.T) {
	tr, _ := newTracker(t, Config{})
	for i := range 24 * 60 {
		at := t0.Add(-time.Duration(i) * time.Minute)
		tr.Apply(uint64(24*60-i), []events.Event{play("t1", "s1", at)}) // newest first: sequences fall
	}
	tr2, _ := newTracker(t, Config{})
	for i := 24*60 - 1; i >= 0; i-- {
		tr2.Apply(uint64(24*60-i), []events.Event{play("t1", "s1", t0.Add(-time.Duration(i)*time.Minute))})
	}
	if got := plays(tr2, DimTitle); got["t1"] != 15 {
		t.Errorf("replayed day: t1 plays %d, want the window's 15", got["t1"])
	}
	// The first tracker applied sequence 1440 first and skipped the rest.
	if got := plays(tr, DimTitle); got["t1"] != 1 {
		t.Errorf("sequences going back: t1 plays %d, want 1", got["t1"])
	}
}

// TestSeq: events and usage summaries share the stream's sequence; a
// message at or before it is a redelivery.
func TestSeq(t *testing.T) {
	tr, _ := newTracker(t, Config{})
	u := func() *fillcast.Usage { return usage("a1", t0, cmcdRow("t1", "", 10, 10, 10_000, 1)) }
	tr.Apply(5, []events.Event{play("t1", "s1", t0)})
	tr.Apply(5, []events.Event{play("t1", "s1", t0)})
	tr.ApplyUsage(4, u())
	tr.ApplyUsage(6, u())
	tr.ApplyUsage(6, u())
	tr.Apply(6, []events.Event{play("t1", "s1", t0)})
	tr.Apply(0, []events.Event{play("t1", "s1", t0)})
	tr.ApplyUsage(0, u())
	tr.ApplyUsage(7, nil)
	tr.ApplyUsage(8, &fillcast.Usage{Appliance: "bad id"})
	r := tr.Report(DimTitle, 0)
	if len(r) != 1 || r[0].Plays != 2 || r[0].CMCDRequests != 20 {
		t.Errorf("t1 = %+v, want 2 plays and 20 CMCD requests", r)
	}
	if got := tr.Applied(); got != 8 {
		t.Errorf("Applied = %d, want 8 (invalid summaries are consumed)", got)
	}
}

// TestBadValues: numbers out of the events' bounds leave the event out.
func TestBadValues(t *testing.T) {
	tr, _ := newTracker(t, Config{})
	tr.Apply(1, []events.Event{
		qoe("t1", "", "", math.NaN(), 10, 0, 1000, t0),
		qoe("t1", "", "", 100, -1, 0, 1000, t0),
		qoe("t1", "", "", 100, 10, math.Inf(1), 1000, t0),
		qoe("t1", "", "", 100, 10, 0, 2e6, t0),
		qoe("t1", "", "", events.MaxStartupMS+1, 10, 0, 1000, t0),
		qoe("t1", "", "", 0, 0, 0, 0, t0), // nothing to count
		qoe("t2", "", "", 100, 10, 0, 1000, t0),
	})
	if got, want := plays(tr, DimTitle), map[string]int64{"t2": 1}; !equalPlays(got, want) {
		t.Errorf("plays %v, want %v", got, want)
	}
}

// TestMaxKeys: a full dimension drops the tenth of its keys with the
// fewest plays to make room, and never holds more than MaxKeys.
func TestMaxKeys(t *testing.T) {
	tr, c := newTracker(t, Config{MaxKeys: 20, Window: 2 * time.Minute})
	var batch []events.Event
	for i := range 20 {
		for range i + 1 { // k<i> has i+1 plays
			batch = append(batch, play(fmt.Sprint("k", i), "s1", t0))
		}
	}
	tr.Apply(1, batch)
	tr.Apply(2, []events.Event{play("new", "s1", t0)})
	got := plays(tr, DimTitle)
	if _, ok := got["k0"]; ok || len(got) != 19 {
		t.Errorf("after one new key: %d keys, k0 present %v; want 19 without k0 and k1", len(got), ok)
	}
	if _, ok := got["k1"]; ok {
		t.Errorf("k1 kept; want the two keys with the fewest plays dropped")
	}
	if got["new"] != 1 || got["k19"] != 20 {
		t.Errorf("new = %d, k19 = %d; want 1 and 20", got["new"], got["k19"])
	}
	// A flood of new keys: the busy keys stay, the dimension stays bounded.
	for i := range 1000 {
		tr.Apply(uint64(3+i), []events.Event{play(fmt.Sprint("junk", i), "s1", t0)})
		if n := len(plays(tr, DimTitle)); n > 20 {
			t.Fatalf("%d keys, want at most 20", n)
		}
	}
	got = plays(tr, DimTitle)
	for i := 2; i < 20; i++ {
		if k := fmt.Sprint("k", i); got[k] != int64(i+1) {
			t.Errorf("%s = %d plays, want %d", k, got[k], i+1)
		}
	}
	if n := len(plays(tr, DimSite)); n != 1 {
		t.Errorf("%d sites, want 1", n)
	}
	// Dropped keys are gone from the minutes too: expiry brings none back.
	c.Set(t0.Add(time.Minute))
	tr.Apply(2000, []events.Event{play("k19", "s1", t0.Add(time.Minute))})
	c.Set(t0.Add(2 * time.Minute))
	if got := plays(tr, DimTitle); !equalPlays(got, map[string]int64{"k19": 1}) {
		t.Errorf("after expiry: %v, want k19 alone", got)
	}
}

// TestTotalsMatchMinutes: after any run of events, clock moves and
// evictions, each key's totals are the sum of the minutes that hold it,
// and a key whose minutes expired is gone without a residue.
func TestTotalsMatchMinutes(t *testing.T) {
	tr, c := newTracker(t, Config{Window: 5 * time.Minute, MaxKeys: 30})
	r := rand.New(rand.NewPCG(3, 4))
	now := t0
	for i := range 400 {
		if r.IntN(8) == 0 {
			now = now.Add(time.Duration(r.IntN(90)) * time.Second)
			c.Set(now)
		}
		var batch []events.Event
		for range r.IntN(20) {
			at := now.Add(-time.Duration(r.IntN(7*60)) * time.Second)
			key := fmt.Sprint("k", r.IntN(40))
			switch r.IntN(3) {
			case 0:
				batch = append(batch, play(key, "s1", at))
			case 1:
				batch = append(batch, fatal(key, "", "a1", at))
			default:
				batch = append(batch, qoe(key, "s1", fmt.Sprint("a", r.IntN(3)), float64(r.IntN(3))*r.Float64()*5000,
					r.Float64()*10, r.Float64()*300, 100+r.Float64()*5000, at))
			}
		}
		tr.Apply(uint64(i+1), batch)
		if r.IntN(10) == 0 {
			tr.ApplyUsage(0, usage("a1", now, cmcdRow(fmt.Sprint("k", r.IntN(40)), "", 10, 5, 5*2000, 1)))
		}
	}
	check := func() {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		tr.advance()
		for d := range tr.totals {
			if n := len(tr.totals[d]); n > 30 {
				t.Errorf("dimension %d: %d keys, want at most 30", d, n)
			}
			for key, tot := range tr.totals[d] {
				var want agg
				for j := range tr.slots {
					if a := tr.slots[j].keys[d][key]; tr.slots[j].used && a != nil {
						want.sums.add(&a.sums)
						for _, b := range a.startup {
							want.startup.add(b.bin, b.n)
						}
						want.slots++
					}
				}
				got := *tot
				if math.Abs(got.bitrateKbpsMS-want.bitrateKbpsMS) <= 1e-6*want.bitrateKbpsMS {
					got.bitrateKbpsMS = want.bitrateKbpsMS
				}
				if got.sums != want.sums || !slices.Equal(got.startup, want.startup) || got.slots != want.slots {
					t.Fatalf("dimension %d key %s: totals %+v, minutes sum to %+v", d, key, got, want)
				}
			}
		}
	}
	check()
	for range 6 {
		now = now.Add(time.Minute)
		c.Set(now)
		check()
	}
	if snap := tr.Snapshot(0); len(snap.Titles)+len(snap.Sites)+len(snap.Appliances) != 0 {
		t.Errorf("after the window: %+v, want nothing", snap)
	}
}
