package cluster

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are what the node measures as raft runs; the rest of its
// Prometheus metrics are read from raft when scraped (Collector).
type metrics struct {
	leaderChanges prometheus.Counter
	// commit and apply time this node's own entries while it leads:
	// from the leader appending an entry to the state machine receiving
	// it (committed) and to the state machine having applied it.
	commit, apply prometheus.Histogram
	// snapshots counts the snapshots taken, by reason (snapshots.go),
	// and snapshotFailures those that failed; sinceSnapshot is the bytes
	// of the entries applied since the last.
	snapshots        *prometheus.CounterVec
	snapshotFailures prometheus.Counter
	sinceSnapshot    prometheus.Gauge
	// leading is the term this node leads in, 0 while it follows: an
	// entry of that term was appended here, so its AppendedAt is this
	// node's clock.
	leading atomic.Uint64
}

func newMetrics() *metrics {
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 14) // 0.5 ms to 4 s
	snapshots := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fillcast_raft_snapshots_total",
		Help: "Snapshots of the state this node took and persisted, by reason: count (SnapshotThreshold entries), size (SnapshotBytes of entries) or file_lists (the file lists moved out of titles were published).",
	}, []string{"reason"})
	for _, r := range []string{reasonCount, reasonSize, reasonLists} {
		snapshots.WithLabelValues(r)
	}
	return &metrics{
		snapshots: snapshots,
		snapshotFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fillcast_raft_snapshot_failures_total",
			Help: "Snapshots of the state this node failed to take (a full disk?); each is tried again after a back-off.",
		}),
		sinceSnapshot: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fillcast_raft_bytes_since_snapshot",
			Help: "Bytes of the log entries applied since the node's last snapshot; a snapshot is taken past SnapshotBytes.",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fillcast_raft_leader_changes_total",
			Help: "Leaders this node has learnt of: each election won by some node, seen here.",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fillcast_raft_commit_seconds",
			Help:    "On the leader, from appending a write to the log to the state machine receiving it committed (a majority stored it).",
			Buckets: buckets,
		}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fillcast_raft_apply_seconds",
			Help:    "On the leader, from appending a write to the log to the state machine having applied it.",
			Buckets: buckets,
		}),
	}
}

// observer counts leader changes and follows this node's leadership. It
// works in raft's filter, called on raft's goroutine: no channel, so no
// goroutine to drain one.
func (m *metrics) observer(self raft.ServerID) *raft.Observer {
	return raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		lo, ok := o.Data.(raft.LeaderObservation)
		if !ok {
			return false
		}
		if lo.LeaderID != "" {
			m.leaderChanges.Inc()
		}
		if lo.LeaderID == self {
			m.leading.Store(o.Raft.CurrentTerm())
		} else {
			m.leading.Store(0)
		}
		return false
	})
}

// timedFSM is the state machine as raft sees it: the node's, timing the
// entries this node appended as leader and counting the bytes applied
// since the last snapshot.
type timedFSM struct {
	raft.FSM
	m *metrics
	b *logBytes
}

// Snapshot implements raft.FSM: raft is taking a snapshot of the
// entries applied so far, which no longer count once it is persisted.
func (f timedFSM) Snapshot() (raft.FSMSnapshot, error) {
	snap, err := f.FSM.Snapshot()
	if err != nil {
		return nil, err
	}
	return countedSnapshot{snap, f.b, f.b.mark()}, nil
}

// Restore implements raft.FSM: the log's entries before the snapshot
// restored no longer count.
func (f timedFSM) Restore(rc io.ReadCloser) error {
	err := f.FSM.Restore(rc)
	if err == nil {
		f.b.restored()
	}
	return err
}

// countedSnapshot is a snapshot of the entries up to mark: once it is
// persisted, they no longer count towards the next one.
type countedSnapshot struct {
	raft.FSMSnapshot
	b    *logBytes
	mark logMark
}

// Persist implements raft.FSMSnapshot.
func (s countedSnapshot) Persist(sink raft.SnapshotSink) error {
	err := s.FSMSnapshot.Persist(sink)
	if err == nil {
		s.b.persisted(s.mark)
	}
	return err
}

// Apply applies l, counts its bytes and observes its commit and apply
// latency when this node appended it.
func (f timedFSM) Apply(l *raft.Log) any {
	received := time.Now()
	res := f.FSM.Apply(l)
	f.b.add(len(l.Data))
	if term := f.m.leading.Load(); term != 0 && l.Term == term && !l.AppendedAt.IsZero() {
		f.m.commit.Observe(received.Sub(l.AppendedAt).Seconds())
		f.m.apply.Observe(time.Since(l.AppendedAt).Seconds())
	}
	return res
}

// Collector returns the node's raft metrics: leadership, term, indexes,
// the log's size, contact with the leader, leader changes, commit and
// apply latency, and snapshots. Register it once; it reads raft when scraped and
// reports only the counters and histograms before Open.
func (n *Node) Collector() prometheus.Collector { return collector{n} }

type collector struct{ n *Node }

// Descriptions of the metrics read when scraped.
var (
	descIsLeader    = raftDesc("is_leader", "1 while this node leads the cluster, else 0.")
	descLeaderKnown = raftDesc("leader_known", "1 while this node knows a leader, else 0 (an election, or cut off from a majority).")
	descTerm        = raftDesc("term", "The node's current raft term.")
	descLastIndex   = raftDesc("last_index", "Index of the last entry in the node's log.")
	descCommitIndex = raftDesc("commit_index", "Index of the last entry the node knows committed.")
	descApplied     = raftDesc("applied_index", "Index of the last entry the node's state machine applied.")
	descFSMPending  = raftDesc("fsm_pending", "Committed entries waiting for the state machine.")
	descSnapIndex   = raftDesc("snapshot_index", "Index of the node's latest snapshot: entries up to it may be compacted from the log.")
	descLogEntries  = raftDesc("log_entries", "Entries in the node's log (last index - first index + 1); snapshots compact it down to the trailing logs.")
	descLogBytes    = raftDesc("log_bytes", "Bytes of the log's segment files on disk.")
	descContact     = raftDesc("last_contact_seconds", "Time since a follower last heard from the leader; 0 on the leader. Absent until first contact.")
	descVoters      = raftDesc("voters", "Voters in the cluster's configuration as this node knows it.")
)

func raftDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("fillcast_raft_"+name, help, nil, nil)
}

// Describe sends every description.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	m := c.n.metrics
	m.leaderChanges.Describe(ch)
	m.commit.Describe(ch)
	m.apply.Describe(ch)
	m.snapshots.Describe(ch)
	m.snapshotFailures.Describe(ch)
	m.sinceSnapshot.Describe(ch)
	for _, d := range []*prometheus.Desc{descIsLeader, descLeaderKnown, descTerm, descLastIndex, descCommitIndex, descApplied,
		descFSMPending, descSnapIndex, descLogEntries, descLogBytes, descContact, descVoters} {
		ch <- d
	}
}

// Collect reads raft and the log.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	n, m := c.n, c.n.metrics
	m.leaderChanges.Collect(ch)
	m.commit.Collect(ch)
	m.apply.Collect(ch)
	m.snapshots.Collect(ch)
	m.snapshotFailures.Collect(ch)
	m.sinceSnapshot.Collect(ch)
	r := n.raft
	if r == nil {
		return // not open
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	state := r.State()
	gauge(descIsLeader, bool01(state == raft.Leader))
	_, leader := r.LeaderWithID()
	gauge(descLeaderKnown, bool01(leader != ""))
	gauge(descTerm, float64(r.CurrentTerm()))
	gauge(descLastIndex, float64(r.LastIndex()))
	gauge(descCommitIndex, float64(r.CommitIndex()))
	gauge(descApplied, float64(r.AppliedIndex()))
	stats := r.Stats()
	for d, key := range map[*prometheus.Desc]string{descFSMPending: "fsm_pending", descSnapIndex: "last_snapshot_index"} {
		if v, err := strconv.ParseUint(stats[key], 10, 64); err == nil {
			gauge(d, float64(v))
		}
	}
	if f := r.GetConfiguration(); f.Error() == nil {
		voters := 0
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		gauge(descVoters, float64(voters))
	}
	switch last := r.LastContact(); {
	case state == raft.Leader:
		gauge(descContact, 0)
	case !last.IsZero():
		gauge(descContact, time.Since(last).Seconds())
	}
	first, ferr := n.wal.FirstIndex()
	last, lerr := n.wal.LastIndex()
	if ferr == nil && lerr == nil {
		entries := uint64(0)
		if last >= first && last > 0 {
			entries = last - first + 1
		}
		gauge(descLogEntries, float64(entries))
	}
	if b, ok := dirBytes(filepath.Join(n.cfg.DataDir, "raft", "wal")); ok {
		gauge(descLogBytes, float64(b))
	}
}

// dirBytes sums the sizes of the files directly in dir.
func dirBytes(dir string) (int64, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	var total int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
	}
	return total, true
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
