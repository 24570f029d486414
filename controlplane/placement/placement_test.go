package placement

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/steering/rendezvous"
)

const gib = 1 << 30

func newPlanner(t testing.TB, cfg Config) *Planner {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero is the default", Config{}, true},
		{"default", DefaultConfig(), true},
		{"negative epsilon", Config{Epsilon: -1}, false},
		{"copy demand over 1", Config{CopyDemand: 2}, false},
		{"negative max copies", Config{MaxCopies: -1}, false},
		{"storage fill over 1", Config{StorageFill: 1.5}, false},
		{"NaN flash fill", Config{FlashFill: math.NaN()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if got := err == nil; got != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

func TestPlanRejects(t *testing.T) {
	t.Parallel()
	good := Appliance{ID: "s1", Profile: fillcast.ProfileStorage, Capacity: gib}
	tests := []struct {
		name string
		in   Input
	}{
		{"repeated appliance", Input{Appliances: []Appliance{good, good}}},
		{"unknown profile", Input{Appliances: []Appliance{{ID: "x", Profile: "disk", Capacity: 1}}}},
		{"no capacity", Input{Appliances: []Appliance{{ID: "x", Profile: fillcast.ProfileFlash}}}},
		{"negative weight", Input{Appliances: []Appliance{{ID: "x", Profile: fillcast.ProfileFlash, Capacity: 1, Weight: -1}}}},
		{"repeated title", Input{Catalog: []Title{{"a", 1}, {"a", 1}}}},
		{"title without size", Input{Catalog: []Title{{"a", 0}}}},
		{"infinite score", Input{Catalog: []Title{{"a", 1}}, Scores: map[string]float64{"a": math.Inf(1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newPlanner(t, Config{}).Plan(tt.in, nil)
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("Plan = %v, want ErrBadInput", err)
			}
		})
	}
}

// TestSmallSite checks a site small enough to reason about by hand.
func TestSmallSite(t *testing.T) {
	t.Parallel()
	in := Input{
		Appliances: []Appliance{
			{ID: "flash-1", Profile: fillcast.ProfileFlash, Capacity: 10 * gib},
			{ID: "storage-1", Profile: fillcast.ProfileStorage, Capacity: 100 * gib},
		},
		Scores: map[string]float64{"a": 9, "b": 5, "c": 1, "d": 0.5},
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		in.Catalog = append(in.Catalog, Title{ID: id, Size: 3 * gib})
	}
	plan, err := newPlanner(t, Config{}).Plan(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		appliance string
		want      []string
	}{
		// Flash plans 90 % of 10 GiB: the three most popular 3 GiB titles.
		{"flash-1", []string{"a", "b", "c"}},
		// One storage appliance holds everything, once.
		{"storage-1", []string{"a", "b", "c", "d", "e"}},
	}
	for _, tt := range tests {
		if got := plan.Holds[tt.appliance]; !slices.Equal(got, tt.want) {
			t.Errorf("%s holds %v, want %v", tt.appliance, got, tt.want)
		}
	}
	if plan.Version != 1 || len(plan.Unplaced) != 0 {
		t.Errorf("version %d, unplaced %v; want 1, none", plan.Version, plan.Unplaced)
	}
}

func TestUnplacedWhenStorageIsTooSmall(t *testing.T) {
	t.Parallel()
	in := Input{
		Appliances: []Appliance{{ID: "s", Profile: fillcast.ProfileStorage, Capacity: 5 * gib}},
		Catalog:    []Title{{"big", 4 * gib}, {"mid", 2 * gib}, {"small", gib}},
	}
	plan, err := newPlanner(t, Config{}).Plan(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := plan.Holds["s"], []string{"big", "small"}; !slices.Equal(got, want) {
		t.Errorf("holds %v, want %v (largest first, then what still fits)", got, want)
	}
	if got, want := plan.Unplaced, []string{"mid"}; !slices.Equal(got, want) {
		t.Errorf("unplaced %v, want %v", got, want)
	}
}

func TestCopiesFollowDemand(t *testing.T) {
	t.Parallel()
	var in Input
	for i := range 6 {
		in.Appliances = append(in.Appliances, Appliance{ID: fmt.Sprintf("s%d", i), Profile: fillcast.ProfileStorage, Capacity: 1000 * gib})
	}
	in.Scores = map[string]float64{}
	for i := range 100 {
		id := fmt.Sprintf("t%02d", i)
		in.Catalog = append(in.Catalog, Title{ID: id, Size: gib})
		in.Scores[id] = 1
	}
	// Shares of a total demand of 142.5: t00 1.4 %, 2 copies at the
	// default CopyDemand of 1 %; t01 28 %, capped at the 6 appliances;
	// t02 2.5 %, 3 copies; the others 0.7 %, one copy.
	in.Scores["t00"] = 2
	in.Scores["t01"] = 40
	in.Scores["t02"] = 3.5
	tests := []struct {
		cfg  Config
		want map[string]int
	}{
		{Config{}, map[string]int{"t00": 2, "t01": 6, "t02": 3, "t03": 1}},
		{Config{MaxCopies: 2}, map[string]int{"t00": 2, "t01": 2, "t02": 2, "t03": 1}},
		{Config{CopyDemand: 0.5}, map[string]int{"t00": 1, "t01": 1, "t02": 1, "t03": 1}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.cfg), func(t *testing.T) {
			plan, err := newPlanner(t, tt.cfg).Plan(in, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := copiesOf(plan)
			for title, want := range tt.want {
				if got[title] != want {
					t.Errorf("copies of %s = %d, want %d", title, got[title], want)
				}
			}
		})
	}
}

// copiesOf counts each title's copies over every appliance of a plan.
func copiesOf(p *Plan) map[string]int {
	c := map[string]int{}
	for _, titles := range p.Holds {
		for _, t := range titles {
			c[t]++
		}
	}
	return c
}

func TestVersionAndDiff(t *testing.T) {
	t.Parallel()
	in := Input{
		Appliances: []Appliance{
			{ID: "f", Profile: fillcast.ProfileFlash, Capacity: 3 * gib},
			{ID: "s", Profile: fillcast.ProfileStorage, Capacity: 10 * gib},
		},
		Catalog: []Title{{"a", gib}, {"b", gib}, {"c", gib}, {"d", gib}},
		Scores:  map[string]float64{"a": 3, "b": 2, "c": 1},
	}
	pl := newPlanner(t, Config{FlashFill: 0.7}) // flash room: two titles
	p1, err := pl.Plan(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := pl.Plan(in, p1)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Version != p1.Version || len(Diff(p1, p2)) != 0 {
		t.Errorf("same input: version %d → %d, diff %v; want unchanged", p1.Version, p2.Version, Diff(p1, p2))
	}
	in.Scores = map[string]float64{"a": 3, "b": 1, "c": 2}
	p3, err := pl.Plan(in, p2)
	if err != nil {
		t.Fatal(err)
	}
	if p3.Version != p2.Version+1 {
		t.Errorf("changed plan version %d, want %d", p3.Version, p2.Version+1)
	}
	got := Diff(p2, p3)
	want := []Change{{Appliance: "f", Add: []string{"c"}, Remove: []string{"b"}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Diff = %+v, want %+v", got, want)
	}
	if got := Diff(nil, p1); len(got) != 2 || !slices.Equal(got[1].Add, []string{"a", "b", "c", "d"}) {
		t.Errorf("Diff from nothing = %+v", got)
	}
	if got := Bytes(want[0].Add, map[string]int64{"c": gib}); got != gib {
		t.Errorf("Bytes = %d, want %d", got, gib)
	}
}

func TestSortedDiff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b         []string
		onlyA, onlyB []string
	}{
		{nil, nil, nil, nil},
		{[]string{"a", "c"}, []string{"b", "c"}, []string{"a"}, []string{"b"}},
		{[]string{"a", "b"}, nil, []string{"a", "b"}, nil},
		{nil, []string{"x"}, nil, []string{"x"}},
		{[]string{"a", "b", "d"}, []string{"a", "c", "d", "e"}, []string{"b"}, []string{"c", "e"}},
	}
	for _, tt := range tests {
		gotA, gotB := sortedDiff(tt.a, tt.b)
		if !slices.Equal(gotA, tt.onlyA) || !slices.Equal(gotB, tt.onlyB) {
			t.Errorf("sortedDiff(%v, %v) = %v, %v; want %v, %v", tt.a, tt.b, gotA, gotB, tt.onlyA, tt.onlyB)
		}
	}
}

// TestFirstCopyFollowsRendezvous checks that with room everywhere every
// title's first storage copy is where steering looks first.
func TestFirstCopyFollowsRendezvous(t *testing.T) {
	t.Parallel()
	var in Input
	var nodes []rendezvous.Node
	for i, w := range []float64{1, 2, 0, 3} {
		id := fmt.Sprintf("s%d", i)
		in.Appliances = append(in.Appliances, Appliance{ID: id, Profile: fillcast.ProfileStorage, Capacity: 1000 * gib, Weight: w})
		nodes = append(nodes, rendezvous.Node{Key: rendezvous.Key(id), Weight: max(w, 1)})
	}
	for i := range 500 {
		in.Catalog = append(in.Catalog, Title{ID: fmt.Sprintf("t%d", i), Size: gib})
	}
	plan, err := newPlanner(t, Config{}).Plan(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, title := range in.Catalog {
		first := in.Appliances[rendezvous.Rank(nil, rendezvous.Key(title.ID), nodes)[0]].ID
		if !slices.Contains(plan.Holds[first], title.ID) {
			t.Errorf("%s is not on %s, its first rendezvous choice", title.ID, first)
		}
	}
}

// TestFlashBoundWithMismatchedWeights: a heavy but small appliance next
// to a light but big one. With ε = 0.25 the bounds hold min(10, 1.125·P)
// + min(100, 0.125·P) GiB, which is at least P only up to P ≈ 11.4 GiB:
// the small one takes its 10 GiB, the big one its bound of 1.4 GiB, one
// title.
func TestFlashBoundWithMismatchedWeights(t *testing.T) {
	t.Parallel()
	in := Input{
		Appliances: []Appliance{
			{ID: "small", Profile: fillcast.ProfileFlash, Capacity: 10 * gib, Weight: 9},
			{ID: "big", Profile: fillcast.ProfileFlash, Capacity: 100 * gib, Weight: 1},
		},
		Scores: map[string]float64{},
	}
	for i := range 200 {
		id := fmt.Sprintf("t%03d", i)
		in.Catalog = append(in.Catalog, Title{ID: id, Size: gib})
		in.Scores[id] = float64(1000 - i)
	}
	plan, err := newPlanner(t, Config{FlashFill: 1, CopyDemand: 1}).Plan(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(plan.Holds["small"]); got != 10 {
		t.Errorf("small holds %d titles, want 10", got)
	}
	if got := len(plan.Holds["big"]); got != 1 {
		t.Errorf("big holds %d titles, want 1", got)
	}
	if got, want := len(plan.Unplaced), 200; got != want {
		t.Errorf("%d titles unplaced in a site without storage, want %d", got, want)
	}
}

// TestFlashKeepsPreviousCopies: with the same popular set, a plan made
// from a different previous plan keeps that plan's flash placement
// rather than the fresh hash order.
func TestFlashKeepsPreviousCopies(t *testing.T) {
	t.Parallel()
	in := Input{Scores: map[string]float64{}}
	for _, id := range []string{"f1", "f2"} {
		in.Appliances = append(in.Appliances, Appliance{ID: id, Profile: fillcast.ProfileFlash, Capacity: 20 * gib})
	}
	for i := range 30 {
		id := fmt.Sprintf("t%02d", i)
		in.Catalog = append(in.Catalog, Title{ID: id, Size: gib})
		in.Scores[id] = float64(100 - i)
	}
	p := newPlanner(t, Config{CopyDemand: 1})
	fresh := mustPlan(t, p, in, nil)
	// Swap the two appliances' sets: a legal placement, just not the
	// hash's.
	prev := &Plan{Version: 7, Holds: map[string][]string{"f1": fresh.Holds["f2"], "f2": fresh.Holds["f1"]}, Unplaced: fresh.Unplaced}
	got := mustPlan(t, p, in, prev)
	if !got.Same(prev) || got.Version != 7 {
		t.Errorf("plan moved titles that fit where they were: %+v", Diff(prev, got))
	}
}
