package opsindex

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
	"github.com/fillcast/fillcast/internal/clocktest"
)

// The projection interface the stream consumer feeds.
var _ interface {
	Apply(seq uint64, batch []events.Event)
	Applied() uint64
} = (*Index)(nil)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newIndex(t testing.TB, cfg Config) (*Index, *clocktest.Clock) {
	t.Helper()
	c := clocktest.New(t0)
	x, err := New(cfg, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return x, c
}

// ev is an event of the given type and fields, ago before t0.
func ev(id, typ, title, appliance, site, user string, ago time.Duration) events.Event {
	e := events.Event{ID: id, Type: typ, Title: title, Appliance: appliance, Site: site, User: user, TS: t0.Add(-ago)}
	if typ == events.TypeError {
		e.Code, e.Fatal = "E", true
	}
	return e
}

func ids(r Result) []string {
	out := []string{}
	for _, e := range r.Events {
		out = append(out, e.ID)
	}
	return out
}

func TestSearch(t *testing.T) {
	x, _ := newIndex(t, Config{})
	x.Apply(1, []events.Event{
		ev("e1", events.TypePlay, "t1", "", "s1", "u1", 50*time.Minute),
		ev("e2", events.TypeQoE, "t1", "a1", "s1", "u1", 49*time.Minute),
		ev("e3", events.TypeError, "t1", "a1", "s1", "u1", 48*time.Minute),
		ev("e4", events.TypePlay, "t2", "", "s2", "u2", 40*time.Minute),
	})
	x.Apply(2, []events.Event{
		ev("e5", events.TypeError, "t2", "a2", "s2", "u2", 30*time.Minute),
		ev("e6", events.TypeSearch, "", "", "s1", "u1", 20*time.Minute),
		ev("e7", events.TypeQoE, "t1", "a2", "s2", "u3", 10*time.Minute),
		ev("e0", events.TypeError, "t3", "a1", "s1", "u1", 55*time.Minute), // arrived late
	})
	tests := []struct {
		name  string
		q     Query
		want  []string
		total int
	}{
		{"everything", Query{}, []string{"e0", "e7", "e6", "e5", "e4", "e3", "e2", "e1"}, 8},
		{"limit", Query{Limit: 3}, []string{"e0", "e7", "e6"}, 8},
		{"type", Query{Type: events.TypeError}, []string{"e0", "e5", "e3"}, 3},
		{"title", Query{Title: "t1"}, []string{"e7", "e3", "e2", "e1"}, 4},
		{"appliance", Query{Appliance: "a2"}, []string{"e7", "e5"}, 2},
		{"site", Query{Site: "s1"}, []string{"e0", "e6", "e3", "e2", "e1"}, 5},
		{"user", Query{User: "u2"}, []string{"e5", "e4"}, 2},
		{"title and type", Query{Title: "t1", Type: events.TypeQoE}, []string{"e7", "e2"}, 2},
		{"title and appliance", Query{Title: "t1", Appliance: "a1"}, []string{"e3", "e2"}, 2},
		{"four fields", Query{Type: events.TypeError, Appliance: "a1", Site: "s1", User: "u1"}, []string{"e0", "e3"}, 2},
		{"no such title", Query{Title: "t9"}, []string{}, 0},
		{"no match of two", Query{Title: "t2", Site: "s1"}, []string{}, 0},
		{"since", Query{Since: t0.Add(-45 * time.Minute)}, []string{"e7", "e6", "e5", "e4"}, 4},
		{"since ago", Query{SinceAgo: 30 * time.Minute}, []string{"e7", "e6", "e5"}, 3},
		{"since and title", Query{Title: "t1", Since: t0.Add(-49 * time.Minute)}, []string{"e7", "e3", "e2"}, 3},
		{"since and limit", Query{SinceAgo: 45 * time.Minute, Limit: 1}, []string{"e7"}, 4},
		{"since the late one", Query{Type: events.TypeError, Since: t0.Add(-56 * time.Minute)}, []string{"e0", "e5", "e3"}, 3},
		{"since the future", Query{Since: t0.Add(time.Minute)}, []string{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := x.Search(tt.q)
			if !slices.Equal(ids(got), tt.want) || got.TotalMatched != tt.total {
				t.Errorf("Search = %v (total %d), want %v (total %d)", ids(got), got.TotalMatched, tt.want, tt.total)
			}
		})
	}
	if got, want := x.Search(Query{Title: "t1", Limit: 1}).Events[0], x.Search(Query{}).Events[1]; got != want {
		t.Errorf("events differ between answers: %+v, %+v", got, want)
	}
}

func TestResultJSON(t *testing.T) {
	x, _ := newIndex(t, Config{})
	e := ev("e1", events.TypeError, "t1", "a1", "s1", "u1", time.Minute)
	x.Apply(1, []events.Event{e})
	b, err := json.Marshal(x.Search(Query{}))
	if err != nil {
		t.Fatal(err)
	}
	eb, _ := json.Marshal(e)
	if got, want := string(b), `{"events":[`+string(eb)+`],"total_matched":1}`; got != want {
		t.Errorf("JSON %s, want %s", got, want)
	}
	if b, _ := json.Marshal(x.Search(Query{Title: "none"})); string(b) != `{"events":[],"total_matched":0}` {
		t.Errorf("empty answer %s", b)
	}
}

func TestApplySeq(t *testing.T) {
	x, _ := newIndex(t, Config{})
	one := []events.Event{ev("e", events.TypePlay, "t1", "", "", "", 0)}
	for _, seq := range []uint64{3, 3, 2, 0, 4, 0} {
		x.Apply(seq, one)
	}
	if got, want := x.Len(), 4; got != want {
		t.Errorf("Len = %d, want %d (3, 0, 4 and 0 applied)", got, want)
	}
	if got := x.Applied(); got != 4 {
		t.Errorf("Applied = %d, want 4", got)
	}
}

func TestMaxEvents(t *testing.T) {
	x, _ := newIndex(t, Config{MaxEvents: 5})
	for i := range 8 {
		title := "common"
		if i == 1 {
			title = "rare"
		}
		x.Apply(uint64(i+1), []events.Event{ev(fmt.Sprint("e", i), events.TypePlay, title, "", "", "", time.Duration(8-i)*time.Minute)})
	}
	if got, want := ids(x.Search(Query{})), []string{"e7", "e6", "e5", "e4", "e3"}; !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	if got := x.Search(Query{Title: "rare"}); got.TotalMatched != 0 {
		t.Errorf("the rare title's evicted event is still found: %v", ids(got))
	}
	if _, ok := x.postings[fieldTitle]["rare"]; ok {
		t.Errorf("the rare title's empty posting list is kept")
	}
	if got := len(x.evs); got != 5 {
		t.Errorf("ring of %d events, want MaxEvents 5", got)
	}
}

func TestMaxAge(t *testing.T) {
	x, c := newIndex(t, Config{MaxAge: time.Hour})
	x.Apply(1, []events.Event{
		ev("old", events.TypePlay, "t1", "", "", "", 61*time.Minute), // older than MaxAge: left out
		ev("a", events.TypePlay, "t1", "", "", "", 50*time.Minute),
		ev("b", events.TypePlay, "t1", "", "", "", 10*time.Minute),
		ev("c", events.TypePlay, "t1", "", "", "", 55*time.Minute), // older than b, behind it
		{ID: "now", Type: events.TypePlay, Title: "t1"},            // no ts: the clock's
	})
	if got, want := ids(x.Search(Query{})), []string{"now", "c", "b", "a"}; !slices.Equal(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	if got := x.Search(Query{}); got.Events[0].TS != t0 {
		t.Errorf("an event without ts got %v, want the clock's %v", got.Events[0].TS, t0)
	}
	c.Set(t0.Add(12 * time.Minute)) // a (50m) and c (55m) are past an hour
	if got, want := ids(x.Search(Query{Title: "t1"})), []string{"now", "b"}; !slices.Equal(got, want) {
		t.Errorf("after 12 minutes: %v, want %v", got, want)
	}
	x.Apply(2, nil)
	if got, want := x.Len(), 3; got != want { // a is dropped; c waits behind b
		t.Errorf("Len = %d, want %d", got, want)
	}
	c.Set(t0.Add(2 * time.Hour))
	x.Apply(3, nil)
	if got := x.Len(); got != 0 {
		t.Errorf("Len = %d after two hours, want 0", got)
	}
	for f := range x.postings {
		if n := len(x.postings[f]); n != 0 {
			t.Errorf("field %d keeps %d posting lists", f, n)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"zero", Config{}, ""},
		{"default", DefaultConfig(), ""},
		{"small", Config{MaxEvents: 1, MaxAge: time.Minute}, ""},
		{"negative events", Config{MaxEvents: -1}, "MaxEvents"},
		{"too many events", Config{MaxEvents: 1e9}, "MaxEvents"},
		{"negative age", Config{MaxAge: -time.Hour}, "MaxAge"},
		{"age in seconds", Config{MaxAge: time.Second}, "MaxAge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			var ce *fillcast.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || ce.Pkg != "opsindex" {
				t.Errorf("Validate = %v, want an opsindex ConfigError on %s", err, tt.field)
			}
			if _, err := New(tt.cfg, nil); err == nil {
				t.Errorf("New accepted the config")
			}
		})
	}
}

// TestAgainstScan: after random batches, with events evicted by count
// and by age and arriving out of order, every answer is the one a scan
// of the events kept gives, and the posting lists hold exactly them.
func TestAgainstScan(t *testing.T) {
	tests := []struct {
		name      string
		maxEvents int
		batches   int
		types     []string
	}{
		{"small", 300, 200, events.Types[:]},
		// Posting lists of more than a block.
		{"long lists", 3000, 1000, []string{events.TypeQoE, events.TypeError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { againstScan(t, tt.maxEvents, tt.batches, tt.types) })
	}
}

func againstScan(t *testing.T, maxEvents, batches int, types []string) {
	x, c := newIndex(t, Config{MaxEvents: maxEvents, MaxAge: 2 * time.Hour})
	r := rand.New(rand.NewPCG(5, 6))
	pick := func(prefix string, n int) string {
		if r.IntN(5) == 0 {
			return ""
		}
		return fmt.Sprint(prefix, r.IntN(n))
	}
	now := t0
	var kept []events.Event // every event applied and still within MaxAge, by arrival
	for i := range batches {
		now = now.Add(time.Duration(r.IntN(120*300/maxEvents+1)) * time.Second)
		c.Set(now)
		var batch []events.Event
		for j := range r.IntN(10) {
			e := ev(fmt.Sprint(i, "-", j), types[r.IntN(len(types))], pick("t", 30), pick("a", 5), pick("s", 4), pick("u", 50),
				time.Duration(r.IntN(3*3600))*time.Second)
			e.TS = now.Add(-(time.Duration(r.IntN(3*3600)) * time.Second))
			batch = append(batch, e)
		}
		x.Apply(uint64(i+1), batch)
		for _, e := range batch {
			if !e.TS.Before(now.Add(-2 * time.Hour)) {
				kept = append(kept, e)
			}
		}
		if len(kept) > maxEvents {
			kept = kept[len(kept)-maxEvents:]
		}
		if i%(batches/10) != batches/10-1 {
			continue
		}
		for range 30 {
			q := Query{Type: "", Title: pick("t", 30), Appliance: pick("a", 5), Site: pick("s", 4), Limit: 1 + r.IntN(20)}
			if r.IntN(3) == 0 {
				q.Type = types[r.IntN(len(types))]
			}
			if r.IntN(4) == 0 {
				q.User = pick("u", 50)
			}
			if r.IntN(2) == 0 {
				q.SinceAgo = time.Duration(1+r.IntN(3*3600)) * time.Second
			}
			var want []string
			total := 0
			since := now.Add(-2 * time.Hour)
			if q.SinceAgo > 0 && now.Add(-q.SinceAgo).After(since) {
				since = now.Add(-q.SinceAgo)
			}
			for k := len(kept) - 1; k >= 0; k-- {
				e := &kept[k]
				if e.TS.Before(since) || !matches(e, &[numFields]string{q.Type, q.Title, q.Appliance, q.Site, q.User}) {
					continue
				}
				total++
				if len(want) < q.Limit {
					want = append(want, e.ID)
				}
			}
			got := x.Search(q)
			if !slices.Equal(ids(got), append([]string{}, want...)) || got.TotalMatched != total {
				t.Fatalf("batch %d: Search(%+v) = %v (%d), want %v (%d)", i, q, ids(got), got.TotalMatched, want, total)
			}
		}
		checkPostings(t, x)
	}
}

// checkPostings checks that the posting lists hold the positions of the
// events kept, in order, and nothing else.
func checkPostings(t *testing.T, x *Index) {
	t.Helper()
	want := [numFields]map[string][]uint64{}
	for f := range want {
		want[f] = map[string][]uint64{}
	}
	for p := x.head; p < x.next; p++ {
		for f, v := range fieldsOf(&x.evs[x.slot(p)]) {
			if v != "" {
				want[f][v] = append(want[f][v], p)
			}
		}
	}
	for f := range want {
		if len(x.postings[f]) != len(want[f]) {
			t.Fatalf("field %d: %d posting lists, want %d", f, len(x.postings[f]), len(want[f]))
		}
		for v, pos := range want[f] {
			pl := x.postings[f][v]
			var got []uint64
			if pl != nil {
				pl.walk(func(p uint64) bool { got = append(got, p); return true })
				slices.Reverse(got)
			}
			if !slices.Equal(got, pos) || pl.n != len(pos) {
				t.Fatalf("field %d value %s: postings %v, want %v", f, v, got, pos)
			}
		}
	}
}

func TestConcurrent(t *testing.T) {
	x, c := newIndex(t, Config{MaxEvents: 100})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 300 {
				x.Apply(0, []events.Event{ev(fmt.Sprint(w, i), events.TypePlay, fmt.Sprint("t", i%7), "a1", "s1", "u1", 0)})
			}
		})
	}
	wg.Go(func() {
		for i := range 300 {
			c.Set(t0.Add(time.Duration(i) * time.Second))
			x.Search(Query{Title: "t3", SinceAgo: time.Hour})
			x.Search(Query{})
		}
	})
	wg.Wait()
	if got := x.Len(); got != 100 {
		t.Errorf("Len = %d, want MaxEvents 100", got)
	}
}
