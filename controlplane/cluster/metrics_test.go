package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
	"github.com/prometheus/client_golang/prometheus"
)

// gather returns n's raft metrics by name: a histogram by its sample
// count.
func gather(t *testing.T, n *testNode) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(n.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.Gauge != nil:
				out[mf.GetName()] = m.Gauge.GetValue()
			case m.Counter != nil:
				out[mf.GetName()] = m.Counter.GetValue()
			case m.Histogram != nil:
				out[mf.GetName()] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// TestMetricsFollowLeadership: in a cluster of three, only the leader
// times the writes it appends, every node counts the leader it learns
// of, followers report their contact with the leader, and after the
// leader is killed the new one takes over timing.
func TestMetricsFollowLeadership(t *testing.T) {
	nodes := startCluster(t, 3)
	const writes = 5
	gatherAll := func() map[*testNode]map[string]float64 {
		out := map[*testNode]map[string]float64{}
		for _, n := range nodes {
			out[n] = gather(t, n)
		}
		return out
	}
	// Writes through a follower, in a round without an election (on a
	// loaded machine one may come; the next round then checks).
	var before, after map[*testNode]map[string]float64
	var old *testNode
	for round := 0; ; round++ {
		old, before = leaderOf(nodes), gatherAll()
		for i := range writes {
			if err := applyCtx(t, nodes[1], putSite(fmt.Sprintf("r%d-s%d", round, i))); err != nil {
				t.Fatal(err)
			}
		}
		poll.Until(t, 5*time.Second, "the writes on every node", func() bool {
			for _, n := range nodes {
				if !hasSite(n, fmt.Sprintf("r%d-s%d", round, writes-1)) {
					return false
				}
			}
			return true
		})
		after = gatherAll()
		stable := old != nil && leaderOf(nodes) == old
		for _, n := range nodes {
			stable = stable && after[n]["fillcast_raft_leader_changes_total"] == before[n]["fillcast_raft_leader_changes_total"]
		}
		if stable {
			break
		}
		if round == 3 {
			t.Fatal("an election in each of 4 rounds of writes")
		}
	}
	for _, n := range nodes {
		m, b := after[n], before[n]
		leads := n == old
		var problems []string
		want := func(name string, ok bool, wanted string) {
			if !ok {
				problems = append(problems, fmt.Sprintf("%s = %v (before the writes %v), want %s", name, m[name], b[name], wanted))
			}
		}
		want("fillcast_raft_is_leader", m["fillcast_raft_is_leader"] == map[bool]float64{true: 1, false: 0}[leads], fmt.Sprint(leads))
		want("fillcast_raft_leader_known", m["fillcast_raft_leader_known"] == 1, "1")
		want("fillcast_raft_voters", m["fillcast_raft_voters"] == 3, "3")
		want("fillcast_raft_leader_changes_total", m["fillcast_raft_leader_changes_total"] >= 1, ">= 1")
		want("fillcast_raft_applied_index", m["fillcast_raft_applied_index"]-b["fillcast_raft_applied_index"] >= writes, fmt.Sprintf("+%d", writes))
		want("fillcast_raft_log_entries", m["fillcast_raft_log_entries"]-b["fillcast_raft_log_entries"] >= writes, fmt.Sprintf("+%d", writes))
		want("fillcast_raft_log_bytes", m["fillcast_raft_log_bytes"] > 0, "> 0")
		want("fillcast_raft_bytes_since_snapshot", m["fillcast_raft_bytes_since_snapshot"] > b["fillcast_raft_bytes_since_snapshot"], "grown by the writes")
		_, snaps := m["fillcast_raft_snapshots_total"]
		want("fillcast_raft_snapshots_total", snaps, "present")
		_, contact := m["fillcast_raft_last_contact_seconds"]
		want("fillcast_raft_last_contact_seconds", contact && m["fillcast_raft_last_contact_seconds"] < 5, "under 5 s")
		if leads {
			want("fillcast_raft_commit_seconds", m["fillcast_raft_commit_seconds"]-b["fillcast_raft_commit_seconds"] >= writes, fmt.Sprintf("+%d on the leader", writes))
			want("fillcast_raft_apply_seconds", m["fillcast_raft_apply_seconds"]-b["fillcast_raft_apply_seconds"] >= writes, fmt.Sprintf("+%d on the leader", writes))
		} else {
			want("fillcast_raft_commit_seconds", m["fillcast_raft_commit_seconds"] == b["fillcast_raft_commit_seconds"], "unmoved on a follower")
		}
		if len(problems) > 0 {
			t.Errorf("%s (leader %v):\n%s", n.id, leads, strings.Join(problems, "\n"))
		}
	}
	before = after

	// Kill the leader: the survivors count a leader change, and the new
	// leader times the next write.
	old.Close()
	var survivors []*testNode
	for _, n := range nodes {
		if n != old {
			survivors = append(survivors, n)
		}
	}
	var nl *testNode
	poll.Until(t, 10*time.Second, "a leader among the survivors", func() bool { nl = leaderOf(survivors); return nl != nil })
	if err := applyCtx(t, nl, putSite("after")); err != nil {
		t.Fatal(err)
	}
	for _, n := range survivors {
		m := gather(t, n)
		if got, was := m["fillcast_raft_leader_changes_total"], before[n]["fillcast_raft_leader_changes_total"]; got <= was {
			t.Errorf("%s: leader changes %v after a failover, was %v", n.id, got, was)
		}
		if n == nl {
			if got, was := m["fillcast_raft_commit_seconds"], before[n]["fillcast_raft_commit_seconds"]; got <= was {
				t.Errorf("%s, the new leader: timed writes %v after a write, was %v", n.id, got, was)
			}
			if m["fillcast_raft_term"] <= before[n]["fillcast_raft_term"] {
				t.Errorf("%s: term %v, was %v before the election", n.id, m["fillcast_raft_term"], before[n]["fillcast_raft_term"])
			}
		}
	}
}
