package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/cluster/clustertest"
	"github.com/fillcast/fillcast/internal/poll"
)

// testNet is a cluster on a clustertest.Net, which a test cuts and
// heals.
type testNet struct {
	*clustertest.Net
	nodes []*testNode
}

// startNet starts a cluster of size nodes on a clustertest.Net, n1
// leading.
func startNet(t *testing.T, size int) *testNet {
	t.Helper()
	tn := &testNet{Net: clustertest.New(size)}
	for i := range size {
		n := &testNode{id: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), client: tn.Client(i)}
		startNode(t, n, i == 0, tn.Transport(i))
		tn.SetURL(i, n.srv.URL)
		tn.nodes = append(tn.nodes, n)
	}
	poll.Until(t, 5*time.Second, "n1 to lead", func() bool { return tn.nodes[0].IsLeader() })
	for i := 1; i < size; i++ {
		n := tn.nodes[i]
		if err := tn.nodes[0].AddVoter(JoinRequest{ID: n.id, RaftAddr: string(tn.Transport(i).LocalAddr()), HTTPURL: n.srv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, "every node to know the leader and its URL", func() bool {
		for _, n := range tn.nodes {
			if id, url := n.Leader(); id == "" || url == "" {
				return false
			}
		}
		return true
	})
	return tn
}

func (tn *testNet) others(i int) []*testNode {
	var out []*testNode
	for j, n := range tn.nodes {
		if j != i {
			out = append(out, n)
		}
	}
	return out
}
