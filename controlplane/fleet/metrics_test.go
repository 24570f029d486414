package fleet

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// TestCollectorStates: every appliance is counted in the state steering
// puts it in, and heartbeats' ages are reported by appliance.
func TestCollectorStates(t *testing.T) {
	synctest.Test(t, testCollectorStates)
}

func testCollectorStates(t *testing.T) {
	st := newState(t)
	b, _ := register("a4", "storage").Encode()
	if r := st.Apply(&raft.Log{Index: 10, Data: b}); r != nil {
		t.Fatal(r)
	}
	f := start(t, st, time.Now, 10*time.Millisecond)
	// a3 beats, then falls silent for longer than steering waits.
	f.Heartbeat("a3", beat("ok"), true)
	time.Sleep(10 * time.Second)
	f.Heartbeat("a1", beat("ok"), true)
	f.Heartbeat("a2", beat("draining"), true)
	f.Heartbeat("x9", beat("ok"), true) // not registered
	poll.Until(t, 5*time.Second, "a1 serving", func() bool { return f.Current().Serving("a1", time.Now()) })

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	ages := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "fillcast_fleet_appliances":
				got[labels["state"]] = m.GetGauge().GetValue()
			case "fillcast_fleet_heartbeat_age_seconds":
				if labels["site"] != "isp1" {
					t.Errorf("%s: site %q, want isp1", labels["appliance"], labels["site"])
				}
				ages[labels["appliance"]] = m.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{StateServing: 1, StateDraining: 1, StateStale: 1, StateSilent: 1, StateExcluded: 1}
	for state, n := range want {
		if got[state] != n {
			t.Errorf("appliances %s = %v, want %v", state, got[state], n)
		}
	}
	for id, age := range map[string]float64{"a1": 0, "a2": 0, "a3": 10, "x9": 0} {
		// The poll above ran the bubble's clock on by a few milliseconds.
		if got, ok := ages[id]; !ok || got < age || got > age+1 {
			t.Errorf("heartbeat age of %s = %v (present %v), want %v s and a little", id, got, ok, age)
		}
	}
	if _, ok := ages["a4"]; ok {
		t.Error("a heartbeat age for a4, which never beat")
	}
}
