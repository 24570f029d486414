package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/hashicorp/raft"
)

// TestReadIndexesCoalesce: a hundred lookups at once make few asks of
// the leader, and each gets an answer read after it arrived.
func TestReadIndexesCoalesce(t *testing.T) {
	var q readIndexes
	var asks, index atomic.Uint64
	fetch := func(context.Context) (uint64, error) {
		asks.Add(1)
		i := index.Add(1) // the leader's index at the time it was asked
		time.Sleep(20 * time.Millisecond)
		return i, nil
	}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			before := index.Load() // every write this caller must see is at or below it
			got, err := q.get(context.Background(), fetch)
			if err != nil || got <= before {
				t.Errorf("get = %d, %v; want an index read after %d", got, err, before)
			}
		})
	}
	wg.Wait()
	if n := asks.Load(); n > 10 {
		t.Errorf("100 concurrent lookups asked the leader %d times, want a few", n)
	}
}

// refuseBound is how long a node cut off from the others may take to
// refuse a linearizable read: a round and a wait to apply
// (readIndexTimeout each), with room for a loaded machine.
const refuseBound = 2*readIndexTimeout + 2*time.Second

// catchUp runs n's CatchUp and returns its error and how long it took.
func catchUp(n *testNode) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := n.CatchUp(ctx)
	return time.Since(start), err
}

// wantRefused checks that a linearizable read on n was refused with a
// clear error, in time, and answered 503 over HTTP.
func wantRefused(t *testing.T, n *testNode, took time.Duration, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%s, cut off, answered a linearizable read", n.id)
	case !errors.Is(err, ErrStale) && !errors.Is(err, ErrNoLeader):
		t.Errorf("%s: err = %v, want ErrStale or ErrNoLeader", n.id, err)
	case StatusOf(err) != http.StatusServiceUnavailable:
		t.Errorf("%s: status %d, want 503", n.id, StatusOf(err))
	}
	if took > refuseBound {
		t.Errorf("%s took %s to refuse a linearizable read, want at most %s", n.id, took, refuseBound)
	}
}

// TestReadsSeeWritesThroughOtherNodes: a linearizable read on any node
// sees every write acknowledged before it, whichever node took it.
func TestReadsSeeWritesThroughOtherNodes(t *testing.T) {
	nodes := startCluster(t, 3)
	for i := range 12 {
		id := fmt.Sprintf("w%d", i)
		if err := applyCtx(t, nodes[i%3], putSite(id)); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			// Retried only while an election (on a loaded machine) refuses
			// it; once answered, the write must be there.
			poll.UntilNil(t, 10*time.Second, "a linearizable read on "+n.id, func() error { _, err := catchUp(n); return err })
			if !hasSite(n, id) {
				t.Errorf("%s: a linearizable read after the write of %s through %s misses it", n.id, id, nodes[i%3].id)
			}
		}
	}
}

// TestPartitionedLeaderRefusesReads: a leader cut off from the others
// refuses linearizable reads at once, never answering without the
// writes the majority takes meanwhile; its state stays readable for
// reads that allow staleness, which it reports; healed, it serves
// linearizable reads again, with those writes.
func TestPartitionedLeaderRefusesReads(t *testing.T) {
	tn := startNet(t, 3)
	if err := applyCtx(t, tn.nodes[0], putSite("before")); err != nil {
		t.Fatal(err)
	}
	for _, n := range tn.nodes {
		poll.UntilNil(t, 10*time.Second, "a linearizable read on "+n.id, func() error { _, err := catchUp(n); return err })
		if !hasSite(n, "before") {
			t.Fatalf("%s misses a write made before its linearizable read", n.id)
		}
	}
	// Whichever node leads now (a loaded machine may have moved it).
	var i int
	poll.Until(t, 10*time.Second, "a leader", func() bool {
		for i = range tn.nodes {
			if tn.nodes[i].IsLeader() {
				return true
			}
		}
		return false
	})
	old := tn.nodes[i]
	tn.Isolate(i)
	cut := time.Now()
	took, err := catchUp(old)
	wantRefused(t, old, took, err)
	t.Logf("the partitioned leader refused a linearizable read after %s: %v", took.Round(time.Millisecond), err)

	majority := tn.others(i)
	poll.Until(t, 10*time.Second, "a leader in the majority", func() bool { return leaderOf(majority) != nil })
	if err := applyCtx(t, majority[1], putSite("after")); err != nil {
		t.Fatal(err)
	}
	took, err = catchUp(old)
	wantRefused(t, old, took, err)
	if hasSite(old, "after") {
		t.Fatal("the write crossed the partition")
	}
	// Reads that allow staleness still answer, from the old state, and
	// say how old it may be.
	if !hasSite(old, "before") {
		t.Error("the old leader lost its state")
	}
	poll.Until(t, 5*time.Second, "the old leader to report its staleness", func() bool { return old.Staleness() > 0 })
	// Raft notes a contact when the leader steps down, after the cut
	// (or, had it stopped leading before, at its last heartbeat).
	if s, since := old.Staleness(), time.Since(cut); s > since+old.cfg.HeartbeatTimeout {
		t.Errorf("staleness %s, more than the %s since the partition", s, since)
	}

	tn.Heal()
	poll.UntilNil(t, 20*time.Second, "a linearizable read on the healed node", func() error { _, err := catchUp(old); return err })
	if !hasSite(old, "after") {
		t.Error("a linearizable read after healing misses the write the majority took")
	}
	poll.Until(t, 5*time.Second, "the healed node to report no staleness", func() bool { return old.Staleness() == 0 })
}

// TestCutOffFollowerRefusesReads: a follower cut off from the leader
// refuses linearizable reads rather than answer without a write it has
// not got, whether it can still reach the leader's HTTP (it gets a read
// index it cannot reach) or not (it cannot ask).
func TestCutOffFollowerRefusesReads(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(tn *testNet, i int)
	}{
		{"raft and http cut", (*testNet).Isolate},
		{"raft cut, http up", (*testNet).IsolateRaft},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := startNet(t, 3)
			f := tn.nodes[2]
			if err := applyCtx(t, tn.nodes[0], putSite("before")); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 5*time.Second, "the write on the follower", func() bool { return hasSite(f, "before") })
			tc.cut(tn, 2)
			if err := applyCtx(t, tn.nodes[0], putSite("after")); err != nil {
				t.Fatal(err)
			}
			took, err := catchUp(f)
			wantRefused(t, f, took, err)
			if hasSite(f, "after") {
				t.Fatal("the write crossed the partition")
			}
			poll.Until(t, 5*time.Second, "the follower to report its staleness", func() bool { return f.Staleness() > 0 })
		})
	}
}

// TestReadScopeAndGrace: within a ReadScope one round serves every
// read; CatchUpOrRecent lets a node cut off from the leader answer from
// its copy for the grace after it last heard from one, and no longer.
func TestReadScopeAndGrace(t *testing.T) {
	tn := startNet(t, 3)
	f := tn.nodes[2]
	if err := applyCtx(t, tn.nodes[0], putSite("before")); err != nil {
		t.Fatal(err)
	}
	poll.UntilNil(t, 10*time.Second, "a linearizable read", func() error { _, err := catchUp(f); return err })
	ctx := ReadScope(context.Background())
	if err := f.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	started := func() uint64 {
		f.reads.mu.Lock()
		defer f.reads.mu.Unlock()
		return f.reads.started
	}
	rounds := started()
	for range 10 {
		if err := f.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := started(); got != rounds {
		t.Errorf("10 reads in one scope started %d rounds, want none", got-rounds)
	}

	const grace = 600 * time.Millisecond
	tn.Isolate(2)
	// The grace runs from the last word from the leader, which came
	// before the cut.
	cut := f.raft.LastContact()
	if err := f.CatchUpOrRecent(context.Background(), grace); err != nil {
		t.Errorf("just cut off, within the grace: %v", err)
	}
	poll.Until(t, 10*time.Second, "the grace to run out", func() bool {
		return f.CatchUpOrRecent(context.Background(), grace) != nil
	})
	if since := time.Since(cut); since < grace {
		t.Errorf("refused %s after the last contact, before the %s grace ran out", since, grace)
	}
	_, err := catchUp(f)
	wantRefused(t, f, 0, err)
}

// TestNewLeaderReadIndexCoversEarlierTerms: a leader elected just after
// its predecessor committed a write (and was cut off, perhaps before
// the followers learnt of the commit) serves a read index only once it
// has committed an entry of its own term, so reads on it see that write.
func TestNewLeaderReadIndexCoversEarlierTerms(t *testing.T) {
	for round := range 3 {
		tn := startNet(t, 3)
		id := fmt.Sprintf("last%d", round)
		var i int
		poll.UntilNil(t, 10*time.Second, "a write on the leader", func() error {
			for i = range tn.nodes {
				if tn.nodes[i].IsLeader() {
					return tn.nodes[i].applyLocal(mustEncode(putSite(id)))
				}
			}
			return ErrNoLeader
		})
		tn.Isolate(i)
		majority := tn.others(i)
		// The first read index of the new leader (again, should a loaded
		// machine have moved leadership meanwhile).
		var nl *testNode
		var term, index uint64
		poll.UntilNil(t, 10*time.Second, "a read index on a new leader", func() error {
			if nl = leaderOf(majority); nl == nil {
				return ErrNoLeader
			}
			term = nl.raft.CurrentTerm()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			index, err = nl.leaderReadIndex(ctx)
			return err
		})
		var l raft.Log
		if err := nl.wal.GetLog(index, &l); err != nil {
			t.Fatal(err)
		}
		if l.Term != term {
			t.Errorf("round %d: read index %d is an entry of term %d, not of the leader's term %d", round, index, l.Term, term)
		}
		if got := nl.reads.ownTerm.Load(); got < term {
			t.Errorf("round %d: own term %d, want %d", round, got, term)
		}
		poll.UntilNil(t, 10*time.Second, "a linearizable read on the new leader", func() error { _, err := catchUp(nl); return err })
		if !hasSite(nl, id) {
			t.Errorf("round %d: the new leader's linearizable read misses a write its predecessor acknowledged", round)
		}
	}
}

// BenchmarkCatchUp measures a linearizable read's wait on a cluster of
// three on loopback (raft over TCP, read indexes over HTTP), one reader
// at a time and many at once (sharing rounds). Reads refused during an
// election on a loaded machine are counted, not fatal.
func BenchmarkCatchUp(b *testing.B) {
	nodes := startCluster(b, 3)
	read := func(b *testing.B, n *testNode, refused *atomic.Int64) {
		switch err := n.CatchUp(context.Background()); {
		case errors.Is(err, ErrNoLeader) || errors.Is(err, ErrStale):
			refused.Add(1)
		case err != nil:
			b.Error(err)
		}
	}
	for _, bc := range []struct {
		name string
		n    *testNode
	}{{"leader", leaderOf(nodes)}, {"follower", followerOf(nodes)}} {
		b.Run(bc.name, func(b *testing.B) {
			var refused atomic.Int64
			for b.Loop() {
				read(b, bc.n, &refused)
			}
			b.ReportMetric(float64(refused.Load()), "refused")
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			var refused atomic.Int64
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					read(b, bc.n, &refused)
				}
			})
			b.ReportMetric(float64(refused.Load()), "refused")
		})
	}
}

func followerOf(nodes []*testNode) *testNode {
	for _, n := range nodes {
		if !n.IsLeader() {
			return n
		}
	}
	return nil
}

// TestCatchUpAfterRestore: a node restarted from a snapshot, whose
// state machine's own index then says nothing of what it holds (and
// whose log still has the commands the snapshot covers), serves
// linearizable reads before any new command is applied.
func TestCatchUpAfterRestore(t *testing.T) {
	n := startCluster(t, 1)[0]
	for i := range 5 {
		if err := applyCtx(t, n, putSite(fmt.Sprintf("s%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	n.Close()
	// Opened but not run: nothing announces it, so no command follows.
	again, err := New(Config{ID: n.id, DataDir: n.dir, RaftAddr: "127.0.0.1:0", HTTPURL: n.srv.URL,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond}, Deps{FSM: fsm.New(nil), NodeToken: "node"})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Close() })
	poll.Until(t, 10*time.Second, "the restarted node to lead", again.IsLeader)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := again.CatchUp(ctx); err != nil {
		t.Fatalf("linearizable read after a restore: %v", err)
	}
	var ok bool
	again.fsm.Read(func(s *fsm.State) { _, ok = s.Sites["s4"] })
	if !ok || again.fsm.AppliedIndex() != 0 {
		t.Errorf("restored state has s4: %v; state machine index %d, want 0 (no command since the restore)", ok, again.fsm.AppliedIndex())
	}
}
