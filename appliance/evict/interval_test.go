package evict

import (
	"fmt"
	"testing"
	"time"
)

// play appends to trace the requests of session sid playing segments
// first to last of title, one every 6s from start, merged in time order
// with the requests already there.
func play(trace []Request, title string, sid uint64, first, last int32, start time.Duration) []Request {
	var out []Request
	i := 0
	for seg := first; seg <= last; seg++ {
		q := Request{Key: fmt.Sprintf("%s/seg-%05d.m4s", title, seg), Size: 10, Session: sid, Segment: seg,
			At: start + time.Duration(seg-first)*6*time.Second}
		for i < len(trace) && trace[i].At <= q.At {
			out = append(out, trace[i])
			i++
		}
		out = append(out, q)
	}
	return append(out, trace[i:]...)
}

func newTestInterval(t *testing.T, capacity int64) *Interval {
	t.Helper()
	p, err := NewInterval(capacity, nil, IntervalConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestIntervalKeepsTrailedSegments: of a title two viewers watch a
// minute apart, the segments between them are kept for the second
// viewer, while a binge of another title nobody follows streams through.
func TestIntervalKeepsTrailedSegments(t *testing.T) {
	t.Parallel()
	var trace []Request
	trace = play(trace, "a", 1, 0, 19, 0)
	trace = play(trace, "a", 2, 0, 19, 60*time.Second)
	trace = play(trace, "b", 3, 0, 59, 0)
	const capacity = 25 * 10
	hits := func(p Policy) (n int) {
		var got []bool
		rec := &recorder{Policy: p, hits: &got}
		Replay(rec, capacity, trace)
		for i, q := range trace {
			if q.Session == 2 && q.Segment >= 10 && got[i] {
				n++
			}
		}
		return n
	}
	lru := hits(NewLRU())
	if got := hits(newTestInterval(t, capacity)); got != 10 {
		t.Errorf("second viewer hit %d of segments 10-19, want 10 (LRU: %d)", got, lru)
	}
}

// recorder records which requests hit, passing the requests' sessions
// on when its policy reads them.
type recorder struct {
	Policy
	hits *[]bool
}

func (r *recorder) InsertRequest(q Request) {
	*r.hits = append(*r.hits, false)
	if sp, ok := r.Policy.(SessionPolicy); ok {
		sp.InsertRequest(q)
		return
	}
	r.Policy.Insert(q.Key, q.Size)
}

func (r *recorder) AccessRequest(q Request) {
	*r.hits = append(*r.hits, true)
	if sp, ok := r.Policy.(SessionPolicy); ok {
		sp.AccessRequest(q)
		return
	}
	r.Policy.Access(q.Key)
}

// TestIntervalKeepsBudget: under Replay's checks (every victim held,
// named once, none missing while anything is held) with and without
// sessions, and the sessions' viewers are forgotten once idle.
func TestIntervalKeepsBudget(t *testing.T) {
	t.Parallel()
	var trace []Request
	for s := range uint64(40) {
		trace = play(trace, fmt.Sprintf("t%d", s%7), s+1, int32(s%5), int32(s%5+30), time.Duration(s)*17*time.Second)
	}
	p := newTestInterval(t, 200)
	checkedReplay(t, p, 200, trace) // plain Insert and Access: no sessions
	if n := len(p.track.sessions); n != 0 {
		t.Errorf("%d sessions tracked without sessions given", n)
	}
	p = newTestInterval(t, 200)
	r := Replay(p, 200, trace)
	if r.Hits == 0 || r.Evictions == 0 {
		t.Errorf("replay with sessions: %+v, want hits and evictions", r)
	}
	// An hour later every session is idle and gone.
	p.InsertRequest(Request{Key: "late/seg-00000.m4s", Size: 10, Session: 99, At: trace[len(trace)-1].At + time.Hour})
	if n := len(p.track.sessions); n != 1 {
		t.Errorf("%d sessions tracked an hour on, want 1", n)
	}
	for name, ti := range p.track.titles {
		if name != "late" && len(ti.viewers) != 0 {
			t.Errorf("title %s has %d viewers an hour on, want 0", name, len(ti.viewers))
		}
	}
	p.Remove("late/seg-00000.m4s")
	for {
		if _, ok := p.Victim(); !ok {
			break
		}
	}
	if len(p.nodes) != 0 || len(p.cached) != 0 {
		t.Errorf("drained policy holds %d nodes, %d cached", len(p.nodes), len(p.cached))
	}
}

func TestIntervalConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  IntervalConfig
		ok   bool
	}{
		{"zero means defaults", IntervalConfig{}, true},
		{"idle below a segment", IntervalConfig{SegmentDuration: 10 * time.Second, Idle: 5 * time.Second}, false},
		{"negative duration", IntervalConfig{SegmentDuration: -time.Second}, false},
		{"negative half-life", IntervalConfig{HalfLife: -time.Hour}, false},
		{"too many samples", IntervalConfig{Samples: 5000}, false},
		{"negative trailing", IntervalConfig{Trailing: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if got := err == nil; got != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
			if _, err := NewInterval(100, nil, tt.cfg); (err == nil) != tt.ok {
				t.Errorf("NewInterval error %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestIntervalAllocs(t *testing.T) {
	const objects = 1000
	p := newTestInterval(t, objects*10)
	trace := sessionTrace()
	Replay(p, objects*10, trace)
	// Hits by live sessions walking on through cached segments.
	var hits []Request
	for _, q := range trace {
		if _, ok := p.nodes[q.Key]; ok {
			hits = append(hits, q)
		}
	}
	if len(hits) < 100 {
		t.Fatalf("only %d cached segments", len(hits))
	}
	end := trace[len(trace)-1].At
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		q := hits[i%len(hits)]
		q.At = end + time.Duration(i)*time.Millisecond
		p.AccessRequest(q)
		i++
	}); n != 0 {
		t.Errorf("AccessRequest: %v allocs, want 0", n)
	}
}

// sessionTrace is 50 sessions over 9 titles, 200 segments each, starting
// 7s apart, for benchmarks.
func sessionTrace() []Request {
	var trace []Request
	for s := range uint64(50) {
		trace = play(trace, fmt.Sprintf("t%d", s%9), s+1, 0, 199, time.Duration(s)*7*time.Second)
	}
	return trace
}

// BenchmarkIntervalReplay is the cost per request of Interval in a
// replay of sessionTrace with a cache of a tenth of its bytes: hits,
// fills and the sampled victims they cost.
func BenchmarkIntervalReplay(b *testing.B) {
	trace := sessionTrace()
	b.ReportAllocs()
	for b.Loop() {
		p, err := NewInterval(1000*10, nil, IntervalConfig{})
		if err != nil {
			b.Fatal(err)
		}
		Replay(p, 1000*10, trace)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(trace)), "ns/request")
}
