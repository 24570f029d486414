package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestSnapshotBySize: a few large entries, far fewer than
// SnapshotThreshold, make every node snapshot by size and truncate its
// log, keeping fewer trailing entries than TrailingLogs when they are
// large: the log directory ends smaller than what was written to it
// (without truncation it holds every segment written, and the next
// one).
func TestSnapshotBySize(t *testing.T) {
	const (
		limit   = 512 << 10
		entry   = 128 << 10
		entries = 24 // 3 MiB: more than two segments
		segment = 1 << 20
	)
	nodes := startClusterWith(t, 3, func(tn *testNode) { tn.snapshotBytes, tn.segmentBytes = limit, segment })
	first := map[*testNode]uint64{}
	for _, n := range nodes {
		first[n], _ = n.wal.FirstIndex()
	}
	big := strings.Repeat("x", entry)
	for i := range entries {
		// The same job each time: the state stays small, the log grows.
		job := &fsm.Job{ID: "j1", Title: "t1", Status: fsm.JobFailed, Error: fmt.Sprintf("%d %s", i, big)}
		poll.UntilNil(t, 30*time.Second, "a large write", func() error {
			return applyCtx(t, nodes[0], fsm.Command{Op: fsm.OpPutJob, Job: job})
		})
	}
	for _, n := range nodes {
		poll.Until(t, 30*time.Second, n.id+" to snapshot by size and truncate its log", func() bool {
			m := gather(t, n)
			f, _ := n.wal.FirstIndex()
			b, _ := dirBytes(filepath.Join(n.dir, "raft", "wal"))
			return snapshotCount(n, reasonSize) >= 1 && f > first[n]+entries/2 && b < entries*entry && m["fillcast_raft_snapshot_index"] > 0
		})
		if c := snapshotCount(n, reasonCount); c != 0 {
			t.Errorf("%s: %v snapshots by count, want none (the threshold is 8192 entries)", n.id, c)
		}
	}
}

func TestConfigSnapshotBytes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := Config{ID: "n1", DataDir: dir, HTTPURL: "http://127.0.0.1:1", SnapshotBytes: -1}
	var ce *fillcast.ConfigError
	if err := cfg.Validate(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "SnapshotBytes") {
		t.Errorf("Validate with SnapshotBytes -1 = %v, want a ConfigError about SnapshotBytes", err)
	}
	if d := (Config{}).withDefaults(); d.SnapshotBytes != 64<<20 || d.TrailingLogs != 1024 {
		t.Errorf("defaults: SnapshotBytes %d, TrailingLogs %d; want 64 MiB and 1024", d.SnapshotBytes, d.TrailingLogs)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft")); !os.IsNotExist(err) {
		t.Errorf("Validate touched the data directory: %v", err)
	}
}

// TestSnapshotRetried: every SnapshotThreshold entries the node takes a
// snapshot by count; one that fails (its snapshot directory unusable, as
// on a full disk) is not counted, leaves the entries counted, and is
// taken once it can be.
func TestSnapshotRetried(t *testing.T) {
	const threshold = 20
	nodes := startClusterWith(t, 1, func(tn *testNode) { tn.snapshotThreshold = threshold })
	n := nodes[0]
	snaps := filepath.Join(n.dir, "raft", "snapshots")
	if err := os.RemoveAll(snaps); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(snaps, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range threshold + 5 {
		poll.UntilNil(t, 30*time.Second, "a write", func() error { return applyCtx(t, n, putSite(fmt.Sprintf("s%d", i))) })
	}
	poll.Until(t, 30*time.Second, "a failed snapshot", func() bool { return counterValue(n.metrics.snapshotFailures) >= 1 })
	if c := snapshotCount(n, reasonCount); c != 0 {
		t.Errorf("%v snapshots by count counted while none could be written", c)
	}
	if m := gather(t, n); m["fillcast_raft_bytes_since_snapshot"] == 0 {
		t.Error("the entries since the last snapshot stopped counting after a failed one")
	}
	if err := os.Remove(snaps); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(snaps, 0o755); err != nil {
		t.Fatal(err)
	}
	// (TrailingLogs, 1024, keeps the log: the snapshot is on disk.)
	poll.Until(t, 30*time.Second, "the snapshot taken again", func() bool {
		m := gather(t, n)
		return snapshotCount(n, reasonCount) == 1 && m["fillcast_raft_bytes_since_snapshot"] == 0 && m["fillcast_raft_snapshot_index"] > threshold
	})
}

// counterValue returns c's value.
func counterValue(c prometheus.Counter) float64 {
	var out dto.Metric
	if err := c.Write(&out); err != nil {
		return -1
	}
	return out.GetCounter().GetValue()
}

// snapshotCount returns how many snapshots n took for reason.
func snapshotCount(n *testNode, reason string) float64 {
	var out dto.Metric
	if err := n.metrics.snapshots.WithLabelValues(reason).Write(&out); err != nil {
		return -1
	}
	return out.GetCounter().GetValue()
}

// TestSnapshotAfterListsPublished: once the file lists the state moved
// out of titles are published, every node takes one snapshot and drops
// the log entries that carried the files, trailing ones included.
func TestSnapshotAfterListsPublished(t *testing.T) {
	nodes := startCluster(t, 3)
	title := &fillcast.Title{ID: "t1", Name: "T1", Status: fillcast.StatusReady,
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Width: 1280, Height: 720, Bandwidth: 3_000_000}}}
	for i := range 200 {
		title.Files = append(title.Files, fillcast.File{Path: fmt.Sprintf("720p/seg-%05d.m4s", i), Size: 1_000_000})
	}
	poll.UntilNil(t, 30*time.Second, "a title with files", func() error {
		return applyCtx(t, nodes[0], fsm.Command{Op: fsm.OpPutTitle, Title: title})
	})
	var put uint64
	var pending []*fsm.PendingList
	poll.Until(t, 10*time.Second, "the title on every node", func() bool {
		for _, n := range nodes {
			n.fsm.Read(func(s *fsm.State) { pending = s.PendingLists() })
			if len(pending) != 1 || n.fsm.ListsMoved() != 1 {
				return false
			}
		}
		put = nodes[0].fsm.AppliedIndex()
		return true
	})
	for _, n := range nodes {
		if c := snapshotCount(n, reasonLists); c != 0 {
			t.Errorf("%s: %v snapshots with a list pending", n.id, c)
		}
	}
	poll.UntilNil(t, 30*time.Second, "files_published", func() error {
		return applyCtx(t, nodes[1], fsm.Command{Op: fsm.OpFilesPublished, ID: "t1", Digest: pending[0].Digest, ListIndex: pending[0].Index})
	})
	for _, n := range nodes {
		poll.Until(t, 10*time.Second, n.id+" to snapshot and drop the title's entry", func() bool {
			// An empty log's first index is 0.
			f, _ := n.wal.FirstIndex()
			l, _ := n.wal.LastIndex()
			return snapshotCount(n, reasonLists) == 1 && (f > put || l == 0)
		})
	}
}

// TestLogBytes: the entries applied since the last snapshot count until
// a snapshot of them is persisted (one that failed leaves them due, to
// be tried again), then those applied after it still count; a restore
// starts the count again, and a snapshot of the state before it changes
// nothing.
func TestLogBytes(t *testing.T) {
	t.Parallel()
	b := newLogBytes(Config{SnapshotBytes: 100, SnapshotThreshold: 10, TrailingLogs: 4}, newMetrics())
	step := func(name, want string) {
		t.Helper()
		if got := b.due(); got != want {
			t.Errorf("%s: due = %q, want %q", name, got, want)
		}
	}
	for range 3 {
		b.add(40)
	}
	step("120 bytes", reasonSize)
	b.mark() // a snapshot that fails to persist
	step("a failed snapshot", reasonSize)
	m := b.mark()
	b.add(70) // applied while the snapshot is written
	b.persisted(m)
	step("70 bytes after the snapshot", "")
	b.add(40)
	step("110 bytes after the snapshot", reasonSize)
	old := b.mark()
	b.restored()
	b.persisted(old)
	step("a restore", "")
	for range 10 {
		b.add(1)
	}
	step("10 entries", reasonCount)
	if got := b.trailing(2); got != 2 {
		t.Errorf("trailing(2) = %d, want 2 (of the latest 1-byte entries)", got)
	}
}
