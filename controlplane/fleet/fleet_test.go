package fleet

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/steering"
	"github.com/hashicorp/raft"
)

// newState is a site isp1 with appliances a1 to a3 registered, as flash
// appliances if listed in flash, else as storage ones.
func newState(t *testing.T, flash ...string) *fsm.FSM {
	f := fsm.New(nil)
	cmds := []fsm.Command{{Op: fsm.OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"127.0.0.0/8"}}}}
	for _, id := range []string{"a1", "a2", "a3"} {
		profile := fillcast.ProfileStorage
		if slices.Contains(flash, id) {
			profile = fillcast.ProfileFlash
		}
		cmds = append(cmds, register(id, profile))
	}
	for i, c := range cmds {
		b, _ := c.Encode()
		if r := f.Apply(&raft.Log{Index: uint64(i + 1), Data: b}); r != nil {
			t.Fatal(r)
		}
	}
	return f
}

// register is the registration of an appliance of isp1 at beat's URL.
func register(id, profile string) fsm.Command {
	return fsm.Command{Op: fsm.OpRegisterAppliance, Registration: &fsm.Registration{ID: id, Site: "isp1", Profile: profile,
		URLs: []string{"http://x:1"}, CredentialHash: auth.HashSecret(id)}}
}

// start builds a fleet over reg and runs it until the test ends. The
// tests run in a synctest bubble: the rebuild ticker runs on the
// bubble's clock, so polling for a rebuild takes no real time.
func start(t *testing.T, reg Registry, clock func() time.Time, every time.Duration) *Fleet {
	t.Helper()
	s, err := steering.New(steering.Config{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(Config{NodeID: "n1", RebuildEvery: every}, Deps{Registry: reg, Steerer: s, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return f
}

func beat(health string) fillcast.Heartbeat {
	return fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://x:1", Health: health}
}

func TestDrainingAndSilentAppliancesLeave(t *testing.T) {
	synctest.Test(t, testDrainingAndSilentAppliancesLeave)
}

func testDrainingAndSilentAppliancesLeave(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	f := start(t, newState(t), clock, 10*time.Millisecond)
	for _, id := range []string{"a1", "a2", "a3"} {
		if err := f.Heartbeat(id, beat("ok"), true); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 5*time.Second, "three appliances", func() bool { return f.Current().Len() == 3 })
	f.Heartbeat("a1", beat("draining"), true)
	poll.Until(t, 5*time.Second, "a1 drained", func() bool { return !f.Current().Eligible("a1", "t1", now) })
	for range 5 {
		prev := f.Current()
		f.Heartbeat("a2", beat("ok"), true)
		poll.Until(t, 5*time.Second, "a rebuild after a2's heartbeat", func() bool { return f.Current() != prev })
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
}

func TestFlashApplianceGetsOnlyPlannedTitles(t *testing.T) {
	synctest.Test(t, testFlashApplianceGetsOnlyPlannedTitles)
}

func testFlashApplianceGetsOnlyPlannedTitles(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	st := newState(t, "a1")
	f := start(t, st, clock, 5*time.Millisecond)
	flash := beat("ok")
	flash.Profile = fillcast.ProfileFlash
	f.Heartbeat("a1", flash, true)
	f.Heartbeat("a2", beat("ok"), true) // storage
	poll.Until(t, 5*time.Second, "both", func() bool { return f.Current().Len() == 2 })
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
	poll.Until(t, 5*time.Second, "plan applied", func() bool { return !f.Current().Eligible("a1", "t9", now) })
	if !f.Current().Eligible("a1", "t1", now) || !f.Current().Eligible("a2", "t9", now) {
		t.Error("planned title refused, or the storage appliance restricted")
	}
}

// TestFlashApplianceGetsOnlyCompleteTitles: once a flash appliance
// reports its fill progress, steering sends it only the planned titles
// it holds every file of.
func TestFlashApplianceGetsOnlyCompleteTitles(t *testing.T) {
	synctest.Test(t, testFlashApplianceGetsOnlyCompleteTitles)
}

func testFlashApplianceGetsOnlyCompleteTitles(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	st := newState(t, "a1")
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
	f := start(t, st, clock, 5*time.Millisecond)
	// Each step follows the one before: the appliance reports on.
	steps := []struct {
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
	for _, tt := range steps {
		hb := beat("ok")
		hb.Profile, hb.PlanVersion, hb.CompleteTitles = fillcast.ProfileFlash, tt.version, tt.complete
		hb.CompleteSame = tt.name == "list left out as unchanged"
		f.Heartbeat("a1", hb, true)
		poll.Until(t, 5*time.Second, tt.name, func() bool {
			cur := f.Current()
			return cur.Len() == 1 && cur.Eligible("a1", "t1", now) == tt.t1 && cur.Eligible("a1", "t2", now) == tt.t2
		})
		if f.Current().Eligible("a1", "t9", now) {
			t.Errorf("%s: an unplanned title is steered to the flash appliance", tt.name)
		}
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
	poll.Until(t, 5*time.Second, "the new plan, narrowed to the unchanged list", func() bool {
		cur := f.Current()
		return !cur.Eligible("a1", "t1", now) && !cur.Eligible("a1", "t2", now) && !cur.Eligible("a1", "t3", now)
	})
}

// TestRevokedApplianceLeaves: an appliance whose registration is revoked
// leaves steering at the next rebuild, whatever its last heartbeat said;
// one never registered is never steered to.
func TestRevokedApplianceLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		clock := func() time.Time { return now }
		st := newState(t)
		f := start(t, st, clock, 10*time.Millisecond)
		for _, id := range []string{"a1", "a2", "stranger"} {
			if err := f.Heartbeat(id, beat("ok"), true); err != nil {
				t.Fatal(err)
			}
		}
		poll.Until(t, 5*time.Second, "two registered appliances", func() bool { return f.Current().Len() == 2 })
		b, _ := fsm.Command{Op: fsm.OpRevokeAppliance, ID: "a1"}.Encode()
		if r := st.Apply(&raft.Log{Index: 50, Data: b}); r != nil {
			t.Fatal(r)
		}
		f.RegistryChanged()
		poll.Until(t, 5*time.Second, "a1 gone", func() bool { return f.Current().Len() == 1 && !f.Current().Eligible("a1", "t1", now) })
	})
}
