package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/hashicorp/raft"
)

// testNode is a node with its HTTP endpoints on loopback; with tls set,
// the endpoints and raft run over TLS (see tls_test.go).
type testNode struct {
	*Node
	id, dir, raftAddr string
	tls               pki.Files
	srv               *httptest.Server
	node              atomic.Pointer[Node]
	// client, if set, is the node's client to the others (see testNet).
	client *http.Client
	// snapshotBytes, snapshotThreshold and segmentBytes, if set, are
	// the node's Config.SnapshotBytes, SnapshotThreshold and
	// segmentBytes.
	snapshotBytes     int64
	snapshotThreshold uint64
	segmentBytes      int
}

func startNode(t testing.TB, tn *testNode, bootstrap bool, trans raft.Transport) {
	t.Helper()
	if tn.srv == nil {
		mux := http.NewServeMux()
		mux.HandleFunc("POST "+ApplyPath, func(w http.ResponseWriter, r *http.Request) { tn.node.Load().ServeApply(w, r) })
		mux.HandleFunc("POST "+JoinPath, func(w http.ResponseWriter, r *http.Request) { tn.node.Load().ServeJoin(w, r) })
		mux.HandleFunc("POST "+ReadIndexPath, func(w http.ResponseWriter, r *http.Request) { tn.node.Load().ServeReadIndex(w, r) })
		tn.srv = httptest.NewUnstartedServer(mux)
		if tn.tls.IsZero() {
			tn.srv.Start()
		} else {
			tc, err := pki.ServerTLS(tn.tls.Cert, tn.tls.Key, tn.tls.CA)
			if err != nil {
				t.Fatal(err)
			}
			tn.srv.TLS = tc
			tn.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
			tn.srv.StartTLS()
		}
		t.Cleanup(tn.srv.Close)
	}
	if tn.raftAddr == "" {
		tn.raftAddr = "127.0.0.1:0"
	}
	cfg := Config{
		ID: tn.id, DataDir: tn.dir, RaftAddr: tn.raftAddr, HTTPURL: tn.srv.URL, Bootstrap: bootstrap,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		ApplyTimeout: 2 * time.Second, TLS: tn.tls, SnapshotBytes: tn.snapshotBytes,
		segmentBytes: tn.segmentBytes, SnapshotThreshold: tn.snapshotThreshold,
	}
	n, err := New(cfg, Deps{FSM: fsm.New(nil), NodeToken: "node", Transport: trans, Client: tn.client})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := n.Open(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	tn.Node = n
	tn.raftAddr = string(n.trans.LocalAddr())
	tn.node.Store(n)
	t.Cleanup(func() {
		cancel()
		<-done
		n.Close()
	})
}

func startCluster(t testing.TB, size int) []*testNode {
	t.Helper()
	return startClusterWith(t, size, nil)
}

// startClusterWith starts a cluster of size nodes, letting prep (if set)
// finish each node's settings before it starts.
func startClusterWith(t testing.TB, size int, prep func(*testNode)) []*testNode {
	t.Helper()
	nodes := make([]*testNode, size)
	for i := range nodes {
		nodes[i] = &testNode{id: fmt.Sprintf("n%d", i+1), dir: t.TempDir()}
		if prep != nil {
			prep(nodes[i])
		}
		startNode(t, nodes[i], i == 0, nil)
		if i > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := nodes[i].Join(ctx, []string{nodes[0].srv.URL}); err != nil {
				t.Fatal(err)
			}
			cancel()
		}
	}
	poll.Until(t, 10*time.Second, "every node to know the leader and its URL", func() bool {
		for _, n := range nodes {
			if id, url := n.Leader(); id == "" || url == "" {
				return false
			}
		}
		return true
	})
	return nodes
}

func putSite(id string) fsm.Command {
	return fsm.Command{Op: fsm.OpPutSite, Site: &fillcast.Site{ID: id, Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}}
}

func hasSite(n *testNode, id string) bool {
	var ok bool
	n.fsm.Read(func(s *fsm.State) { _, ok = s.Sites[id] })
	return ok
}

func leaderOf(nodes []*testNode) *testNode {
	for _, n := range nodes {
		if n.Node != nil && n.IsLeader() {
			return n
		}
	}
	return nil
}

func applyCtx(t *testing.T, n *testNode, c fsm.Command) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.Apply(ctx, c)
}

// writeOnFollower writes site s1 on a follower, which forwards it to
// the leader, and waits for it on every node; it returns the follower.
func writeOnFollower(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var follower *testNode
	for _, n := range nodes {
		if !n.IsLeader() {
			follower = n
		}
	}
	if err := applyCtx(t, follower, putSite("s1")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "s1 on every node", func() bool {
		for _, n := range nodes {
			if !hasSite(n, "s1") {
				return false
			}
		}
		return true
	})
	return follower
}

func TestClusterReplicatesFailsOverAndRestarts(t *testing.T) {
	nodes := startCluster(t, 3)
	// A write on a follower is forwarded and replicates everywhere.
	follower := writeOnFollower(t, nodes)
	if st := nodes[0].Status(); len(st.Members) != 3 || st.Leader == "" {
		t.Errorf("status = %+v, want 3 members and a leader", st)
	}
	// Invalid commands are refused with ErrInvalid, also when forwarded.
	if err := applyCtx(t, follower, fsm.Command{Op: fsm.OpPutSite, Site: &fillcast.Site{ID: "bad", Kind: "isp", Region: "x", Prefixes: []string{"10.0.0.1/8"}}}); !errors.Is(err, fsm.ErrInvalid) {
		t.Errorf("invalid CIDR: err = %v, want ErrInvalid", err)
	}

	// Kill the leader: a new one within 5 s, and writes go on.
	old := leaderOf(nodes)
	old.Close()
	start := time.Now()
	var survivors []*testNode
	for _, n := range nodes {
		if n != old {
			survivors = append(survivors, n)
		}
	}
	poll.Until(t, 5*time.Second, "a leader among the survivors", func() bool { return leaderOf(survivors) != nil })
	t.Logf("new leader after %s", time.Since(start).Round(time.Millisecond))
	if err := applyCtx(t, survivors[0], putSite("s2")); err != nil {
		t.Fatalf("write after failover: %v", err)
	}

	// The old leader restarts from its data dir and catches up.
	startNode(t, old, false, nil)
	poll.Until(t, 10*time.Second, "the restarted node to catch up", func() bool { return hasSite(old, "s2") })

	// Restart every node, from snapshots: the state survives. (After a
	// restore the state machine's own index says nothing of what it
	// holds, which linearizable reads must not wait on for good.)
	for _, n := range nodes {
		if err := n.raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		n.Close()
	}
	for _, n := range nodes {
		startNode(t, n, false, nil)
	}
	// Committed entries are applied again once the new leader commits.
	poll.Until(t, 10*time.Second, "s1 and s2 on every restarted node", func() bool {
		for _, n := range nodes {
			if !hasSite(n, "s1") || !hasSite(n, "s2") {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		poll.UntilNil(t, 10*time.Second, "a linearizable read on "+n.id, func() error { _, err := catchUp(n); return err })
	}
}

func TestJoinWithDuplicateIDRefused(t *testing.T) {
	nodes := startCluster(t, 2)
	impostor := &testNode{id: "n2", dir: t.TempDir()}
	startNode(t, impostor, false, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := impostor.Join(ctx, []string{nodes[0].srv.URL}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("join with a taken id: err = %v, want ErrDuplicate", err)
	}
}

func TestMinorityPartitionRefusesWrites(t *testing.T) {
	tn := startNet(t, 3)
	nodes := tn.nodes
	if err := applyCtx(t, nodes[0], putSite("before")); err != nil {
		t.Fatal(err)
	}
	// Cut the leader off from both followers.
	tn.Isolate(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := nodes[0].Apply(ctx, putSite("minority"))
	cancel()
	if err == nil {
		t.Fatal("the isolated minority accepted a write")
	}
	majority := tn.others(0)
	poll.Until(t, 5*time.Second, "a leader in the majority", func() bool { return leaderOf(majority) != nil })
	if err := leaderOf(majority).applyLocal(mustEncode(putSite("majority"))); err != nil {
		t.Fatalf("majority write: %v", err)
	}
	if hasSite(nodes[0], "majority") || hasSite(nodes[1], "minority") {
		t.Error("writes crossed the partition")
	}
}

// Writes in flight when a node closes return: raft leaves some of their
// futures unanswered at shutdown, which once hung a forwarded write (and
// the test server waiting for it) for good.
func TestCloseEndsWritesInFlight(t *testing.T) {
	for round := range 20 {
		n := startCluster(t, 1)[0]
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					b, _ := putSite(fmt.Sprintf("s%d-%d-%d", round, w, i)).Encode()
					if _, err := n.ApplyLocal(b); err != nil {
						return
					}
				}
			}()
		}
		start := n.fsm.AppliedIndex()
		poll.Until(t, 10*time.Second, "writes under way", func() bool { return n.fsm.AppliedIndex() >= start+64 })
		n.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: writes still waiting 10 s after Close", round)
		}
	}
}
