package squeeze

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestLeaderChange: the leader records two steps and loses leadership in
// the middle of the third; the new leader goes on from the record, so the
// steps are the same as with one leader.
func TestLeaderChange(t *testing.T) {
	t.Parallel()
	store := newStore(t, "a1")
	stats := &slowAppliance{store: store, squeeze: "q1", p99: linearP99}
	// A leads until two steps are recorded: it stops between passes.
	leadA := func() bool { q := store.squeeze("q1"); return q == nil || len(q.Steps) < 2 }
	var leadB atomic.Bool
	a, stopA := start(t, store, stats, leadA)
	_, _ = start(t, store, stats, leadB.Load)
	if err := a.Start(context.Background(), newSqueeze(t, "q1", Request{})); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "two steps recorded", func() bool { return len(store.squeeze("q1").Steps) >= 2 })
	stopA()
	mid := store.squeeze("q1")
	leadB.Store(true)
	q := waitFinished(t, store, "q1")
	if got, want := percents(q), []float64{5, 10, 15, 20, 25}; !equal(got, want) || q.Status != fsm.SqueezeStopped || q.HeldPercent != 20 {
		t.Errorf("after the leader change: %s at steps %v held %v, want stopped at %v held 20", q.Status, got, q.HeldPercent, want)
	}
	if mid.Finished() || len(mid.Steps) != 2 || mid.Percent != 15 {
		t.Errorf("at the change the squeeze was %s with %d steps at %v %%, want running with 2 at 15", mid.Status, len(mid.Steps), mid.Percent)
	}
}

// TestFollowerIdle: a node that does not lead never writes.
func TestFollowerIdle(t *testing.T) {
	t.Parallel()
	store := newStore(t, "a1")
	var asked atomic.Int32
	r, stop := start(t, store, &slowAppliance{store: store, squeeze: "q1", p99: linearP99}, func() bool { asked.Add(1); return false })
	before := store.f.AppliedIndex()
	if err := r.Start(context.Background(), newSqueeze(t, "q1", Request{})); err != nil {
		t.Fatal(err)
	}
	started := asked.Load()
	poll.Until(t, 10*time.Second, "five passes", func() bool { return asked.Load() >= started+5 })
	stop()
	if q := store.squeeze("q1"); store.f.AppliedIndex() != before+1 || q.Version != 1 {
		t.Errorf("a follower advanced the squeeze to version %d", q.Version)
	}
}

func TestSqueezeAborts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		during func(t *testing.T, r *Runner, store *memStore, stats *slowAppliance)
		reason string
	}{
		{"missing heartbeats", func(t *testing.T, r *Runner, store *memStore, stats *slowAppliance) {
			stats.silent.Store(true)
		}, "no heartbeat from a1 in 3 steps (300ms) at 10 %"},
		{"appliance gone", func(t *testing.T, r *Runner, store *memStore, stats *slowAppliance) {
			if err := store.Apply(context.Background(), fsm.Command{Op: fsm.OpRevokeAppliance, ID: "a1"}); err != nil {
				t.Fatal(err)
			}
		}, "appliance a1 is gone"},
		{"cancelled", func(t *testing.T, r *Runner, store *memStore, stats *slowAppliance) {
			if err := r.Cancel(context.Background(), "q1", "operator:k2"); err != nil {
				t.Fatal(err)
			}
			if err := r.Cancel(context.Background(), "q1", "operator:k2"); !errors.Is(err, ErrFinished) {
				t.Errorf("second Cancel = %v, want ErrFinished", err)
			}
			if err := r.Cancel(context.Background(), "q9", "operator:k2"); !errors.Is(err, fsm.ErrNotFound) {
				t.Errorf("Cancel of an unknown squeeze = %v, want ErrNotFound", err)
			}
		}, "cancelled by operator:k2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := newStore(t, "a1")
			stats := &slowAppliance{store: store, squeeze: "q1", p99: linearP99}
			var leader atomic.Bool
			leader.Store(true)
			r, _ := start(t, store, stats, leader.Load)
			if err := r.Start(context.Background(), newSqueeze(t, "q1", Request{})); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 10*time.Second, "the second step", func() bool { return store.squeeze("q1").Percent == 10 })
			tc.during(t, r, store, stats)
			q := waitFinished(t, store, "q1")
			if q.Status != fsm.SqueezeAborted || !strings.HasPrefix(q.Reason, tc.reason) {
				t.Errorf("finished %s %q, want aborted %q", q.Status, q.Reason, tc.reason)
			}
			if q.HeldPercent != 5 {
				t.Errorf("held %v %%, want 5 (the step that passed)", q.HeldPercent)
			}
		})
	}
}

func TestStartRefusals(t *testing.T) {
	t.Parallel()
	store := newStore(t, "a1", "a2")
	var follower atomic.Bool
	r, err := New(Config{}, Deps{Store: store, Stats: &slowAppliance{store: store, p99: linearP99}, Leader: follower.Load})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Start(ctx, newSqueeze(t, "q1", Request{})); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		id        string
		appliance string
		want      error
		mention   string
	}{
		{"same appliance", "q2", "a1", fsm.ErrInvalid, "squeeze q1 already runs on appliance a1"},
		{"same id", "q1", "a2", fsm.ErrExists, "squeeze q1 exists"},
		{"unregistered", "q3", "a9", fsm.ErrInvalid, "appliance a9 is not registered"},
	}
	for _, tc := range tests {
		q := newSqueeze(t, tc.id, Request{})
		q.Appliance = tc.appliance
		if err := r.Start(ctx, q); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: Start = %v, want %v mentioning %q", tc.name, err, tc.want, tc.mention)
		}
	}
	q := newSqueeze(t, "q4", Request{})
	q.Appliance = "a2"
	if err := r.Start(ctx, q); err != nil {
		t.Errorf("a squeeze of another appliance: %v", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	var leader atomic.Bool
	for _, tc := range []struct {
		name string
		cfg  Config
		d    Deps
		ok   bool
	}{
		{"defaults", Config{}, Deps{Store: store, Stats: &slowAppliance{}, Leader: leader.Load}, true},
		{"negative tick", Config{Tick: -1}, Deps{Store: store, Stats: &slowAppliance{}, Leader: leader.Load}, false},
		{"negative silent steps", Config{SilentSteps: -1}, Deps{Store: store, Stats: &slowAppliance{}, Leader: leader.Load}, false},
		{"no leader", Config{}, Deps{Store: store, Stats: &slowAppliance{}}, false},
	} {
		if _, err := New(tc.cfg, tc.d); (err == nil) != tc.ok {
			t.Errorf("%s: New = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestRuleRepaired: a canary rule deleted by hand in the middle of a step
// is put back, so the step measures what it says.
func TestRuleRepaired(t *testing.T) {
	t.Parallel()
	store := newStore(t, "a1")
	var leader atomic.Bool
	leader.Store(true)
	r, _ := start(t, store, &slowAppliance{store: store, squeeze: "q1", p99: linearP99}, leader.Load)
	q := newSqueeze(t, "q1", Request{})
	q.Step = time.Second // long enough to see the repair inside one step
	if err := r.Start(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the first step", func() bool { return store.canary("q1") == 5 })
	if err := store.Apply(context.Background(), fsm.Command{Op: fsm.OpDeleteRule, ID: RuleID("q1"), By: "operator:k1"}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the canary rule back", func() bool { return store.canary("q1") == 5 })
	if err := r.Cancel(context.Background(), "q1", "test"); err != nil {
		t.Fatal(err)
	}
	waitFinished(t, store, "q1")
}
