package fleet

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/steering"
	"github.com/hashicorp/raft"
)

func newState(t *testing.T) *fsm.FSM {
	f := fsm.New(nil)
	for i, c := range []fsm.Command{
		{Op: fsm.OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"127.0.0.0/8"}}},
	} {
		b, _ := c.Encode()
		if r := f.Apply(&raft.Log{Index: uint64(i + 1), Data: b}); r != nil {
			t.Fatal(r)
		}
	}
	return f
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func beat(health string) fillcast.Heartbeat {
	return fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://x:1", Health: health}
}

func TestDrainingAndSilentAppliancesLeave(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s, _ := steering.New(steering.Config{}, clock)
	f, err := New(Config{NodeID: "n1", RebuildEvery: 10 * time.Millisecond, Now: clock}, newState(t), s, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, id := range []string{"a1", "a2", "a3"} {
		if err := f.Heartbeat(id, beat("ok"), true); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three appliances", func() bool { return f.Current().Len() == 3 })
	f.Heartbeat("a1", beat("draining"), true)
	waitFor(t, "a1 drained", func() bool { return !f.Current().Eligible("a1", "t1", now) })
	for range 5 {
		f.Heartbeat("a2", beat("ok"), true)
		time.Sleep(20 * time.Millisecond)
		if f.Current().Eligible("a1", "t1", now) {
			t.Fatal("a1 came back after another appliance's heartbeat")
		}
	}
	var dst []steering.Target
	for _, tg := range f.Current().Steer(dst, steering.Request{Client: netip.MustParseAddr("127.0.0.1"), Title: "t1"}) {
		if tg.Appliance == "a1" {
			t.Error("steered to draining a1")
		}
	}
	_ = context.Background
}

func TestFlashApplianceGetsOnlyPlannedTitles(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	st := newState(t)
	s, _ := steering.New(steering.Config{}, clock)
	f, err := New(Config{NodeID: "n1", RebuildEvery: 5 * time.Millisecond, Now: clock}, st, s, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flash := beat("ok")
	flash.Profile = fillcast.ProfileFlash
	f.Heartbeat("a1", flash, true)
	f.Heartbeat("a2", beat("ok"), true) // storage
	waitFor(t, "both", func() bool { return f.Current().Len() == 2 })
	if !f.Current().Eligible("a1", "t9", now) {
		t.Fatal("a flash appliance without a plan should fill on demand (every title)")
	}
	for i, c := range []fsm.Command{
		{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "t1", Name: "x", Status: "new"}},
		{Op: fsm.OpPutManifest, Manifest: &fsm.Manifest{Appliance: "a1", Version: 1, Titles: []string{"t1"}}},
	} {
		b, _ := c.Encode()
		if r := st.Apply(&raft.Log{Index: uint64(10 + i), Data: b}); r != nil {
			t.Fatal(r)
		}
	}
	f.RegistryChanged()
	waitFor(t, "plan applied", func() bool { return !f.Current().Eligible("a1", "t9", now) })
	if !f.Current().Eligible("a1", "t1", now) || !f.Current().Eligible("a2", "t9", now) {
		t.Error("planned title refused, or the storage appliance restricted")
	}
}

// TestFlashApplianceGetsOnlyCompleteTitles: once a flash appliance
// reports its fill progress, steering sends it only the planned titles
// it holds every file of.
func TestFlashApplianceGetsOnlyCompleteTitles(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	st := newState(t)
	for i, c := range []fsm.Command{
		{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "t1", Name: "x", Status: "new"}},
		{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "t2", Name: "y", Status: "new"}},
		{Op: fsm.OpPutManifest, Manifest: &fsm.Manifest{Appliance: "a1", Version: 2, Titles: []string{"t1", "t2"}}},
	} {
		b, _ := c.Encode()
		if r := st.Apply(&raft.Log{Index: uint64(10 + i), Data: b}); r != nil {
			t.Fatal(r)
		}
	}
	s, _ := steering.New(steering.Config{}, clock)
	f, err := New(Config{NodeID: "n1", RebuildEvery: 5 * time.Millisecond, Now: clock}, st, s, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name     string
		version  uint64
		complete []string
		t1, t2   bool
	}{
		{"no progress reported: the plan", 0, nil, true, true},
		{"nothing filled yet", 2, nil, false, false},
		{"t1 filled", 2, []string{"t1"}, true, false},
		{"both filled", 2, []string{"t1", "t2"}, true, true},
		{"an older plan's titles count if still planned", 1, []string{"t2", "t9"}, false, true},
		{"t1 filled, t2 gone again", 2, []string{"t1"}, true, false},
		{"list left out as unchanged", 2, nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hb := beat("ok")
			hb.Profile, hb.PlanVersion, hb.CompleteTitles = fillcast.ProfileFlash, tt.version, tt.complete
			hb.CompleteSame = tt.name == "list left out as unchanged"
			f.Heartbeat("a1", hb, true)
			waitFor(t, tt.name, func() bool {
				cur := f.Current()
				return cur.Len() == 1 && cur.Eligible("a1", "t1", now) == tt.t1 && cur.Eligible("a1", "t2", now) == tt.t2
			})
			if f.Current().Eligible("a1", "t9", now) {
				t.Error("an unplanned title is steered to the flash appliance")
			}
		})
	}

	// A new plan (without t1, with t3) comes before the appliance has
	// polled it: it still reports the old plan's list, [t1], as
	// unchanged. That list stays what it holds: nothing of the new plan,
	// not the whole new plan.
	for i, c := range []fsm.Command{
		{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "t3", Name: "z", Status: "new"}},
		{Op: fsm.OpPutManifest, Manifest: &fsm.Manifest{Appliance: "a1", Version: 3, Titles: []string{"t2", "t3"}}},
	} {
		b, _ := c.Encode()
		if r := st.Apply(&raft.Log{Index: uint64(20 + i), Data: b}); r != nil {
			t.Fatal(r)
		}
	}
	hb := beat("ok")
	hb.Profile, hb.PlanVersion, hb.CompleteSame = fillcast.ProfileFlash, 2, true
	f.Heartbeat("a1", hb, true)
	waitFor(t, "the new plan, narrowed to the unchanged list", func() bool {
		cur := f.Current()
		return !cur.Eligible("a1", "t1", now) && !cur.Eligible("a1", "t2", now) && !cur.Eligible("a1", "t3", now)
	})
}
