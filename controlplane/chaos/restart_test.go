package chaos

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// TestRestartAfterLogTruncation: a leader cut off while it takes writes
// appends entries the others never commit; healed, it replaces them
// with the new leader's (a truncation of its log's tail); killed then,
// it must start again from its data and serve the new value. (With
// hashicorp/raft-wal v0.4.0 it cannot: the truncated tail segment is
// marked sealed without an index, and raft panics on "sealed segment
// has no index block" at every start; raft-wal#31, fixed in v0.4.1.)
func TestRestartAfterLogTruncation(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	urls := make([]string, r.cluster.Size())
	for i := range urls {
		urls[i] = r.cluster.URL(i)
	}
	w, err := NewWorkload(WorkloadConfig{Token: r.token, Timeout: 2 * time.Second}, urls, NewHistory(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{}
	do := func(node int, kind Kind, value string) Op {
		op, _ := w.call(ctx, hc, node, Input{Kind: kind, Title: "chaos-trunc", Value: value}, fmt.Sprintf("trunc-%s-%d", value, time.Now().UnixNano()))
		return op
	}
	readsAfter := func(node int) func() bool {
		return func() bool { return do(node, Read, "").Output.Value == "after" }
	}
	leader := r.cluster.Leader(ctx, nil)
	if leader < 0 {
		t.Fatal("no leader")
	}
	if op := do(leader, Update, "before"); op.Output.Result != OK || op.Return == Never {
		t.Fatalf("the first write: %s", op.Why)
	}
	if err := r.net.Isolate(ctx, leader); err != nil {
		t.Fatal(err)
	}
	// Writes the cut-off leader appends while it still thinks it leads,
	// and cannot commit.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { do(leader, Update, fmt.Sprintf("lost-%d", i)) })
	}
	newLeader := -1
	poll.Until(t, 30*time.Second, "a new leader among the others", func() bool {
		newLeader = r.cluster.Leader(ctx, map[int]bool{leader: true})
		return newLeader >= 0
	})
	poll.Until(t, 30*time.Second, "a write through the new leader", func() bool {
		op := do(newLeader, Update, "after")
		return op.Output.Result == OK && op.Return != Never
	})
	wg.Wait()
	if err := r.net.Heal(ctx, leader); err != nil {
		t.Fatal(err)
	}
	r.healthy(t, "the old leader back in the cluster")
	poll.Until(t, 30*time.Second, fmt.Sprintf("n%d (the old leader) reading the new leader's write", leader+1), readsAfter(leader))

	if err := r.cluster.Kill(leader); err != nil {
		t.Fatal(err)
	}
	if err := r.cluster.Start(leader); err != nil {
		t.Fatal(err)
	}
	r.healthy(t, fmt.Sprintf("n%d restarted after its log was truncated", leader+1))
	poll.Until(t, 30*time.Second, fmt.Sprintf("n%d reading the new leader's write after its restart", leader+1), readsAfter(leader))
}
