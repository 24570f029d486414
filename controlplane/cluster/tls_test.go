package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/auth/pki/pkitest"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/hashicorp/raft"
)

// raftAs returns a raft transport that dials with the TLS client files f:
// the way a process holding f would talk to the cluster's raft port.
func raftAs(t *testing.T, f pki.Files) *raft.NetworkTransport {
	t.Helper()
	c, err := pki.ClientTLS(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := listenTLS("127.0.0.1:0", nil, c, c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: stream, MaxPool: 1, Timeout: 5 * time.Second})
	t.Cleanup(func() { tr.Close() })
	return tr
}

// joinAs posts a join request to url as a process holding f would, with
// the admin token, and returns the status (0 when TLS refused it) and
// the error.
func joinAs(t *testing.T, f pki.Files, url string) (int, error) {
	t.Helper()
	c, err := pki.ClientTLS(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: c}
	defer tr.CloseIdleConnections()
	body, _ := json.Marshal(JoinRequest{ID: "n9", RaftAddr: "127.0.0.1:1", HTTPURL: "https://127.0.0.1:1"})
	req, _ := http.NewRequest(http.MethodPost, url+JoinPath, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer node")
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestMutualTLS: a cluster whose nodes hold certificates of one CA
// elects, replicates and forwards over TLS; nothing without a node
// certificate of that CA can join it or speak raft to it, and trying
// leaves the members as they were and the leader's term unmoved by it.
func TestMutualTLS(t *testing.T) {
	l := pkitest.New(t)
	nodes := startClusterWith(t, 3, func(tn *testNode) { tn.tls = l.Issue(t, pki.RoleNode, tn.id, "127.0.0.1") })
	for _, n := range nodes {
		if !strings.HasPrefix(n.srv.URL, "https://") {
			t.Fatalf("node %s serves %s, want https", n.id, n.srv.URL)
		}
	}
	// A write on a follower is forwarded over TLS and replicates.
	writeOnFollower(t, nodes)
	leader := leaderOf(nodes)
	term := leader.raft.CurrentTerm()

	other := pkitest.New(t)
	ca := l.CAFile()
	strangerNode := other.Issue(t, pki.RoleNode, "n4", "127.0.0.1")
	strangerNode.CA = ca
	peers := []struct {
		name    string
		f       pki.Files
		allowed bool
	}{
		{"a node certificate from the cluster CA", l.Issue(t, pki.RoleNode, "n5", "127.0.0.1"), true},
		{"a node certificate from another CA", strangerNode, false},
		{"a self-signed node certificate", pkitest.SelfSigned(t, ca, "fillcast://node/n6"), false},
		{"an appliance certificate from the cluster CA", l.Issue(t, pki.RoleAppliance, "a1"), false},
		{"an operator certificate from the cluster CA", l.Issue(t, pki.RoleOperator, "alice"), false},
		{"no certificate", pki.Files{CA: ca}, false},
	}
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			// Raft: an AppendEntries of a later term would make the
			// leader step down if it got through. The allowed peer
			// sends an old term, which is answered and ignored.
			req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n9"), Addr: []byte("127.0.0.1:1")}, Term: term + 100}
			if p.allowed {
				req.Term = 0
			}
			var resp raft.AppendEntriesResponse
			err := raftAs(t, p.f).AppendEntries(raft.ServerID(leader.id), raft.ServerAddress(leader.raftAddr), req, &resp)
			t.Logf("raft: %v", err)
			if p.allowed && err != nil {
				t.Errorf("raft from an allowed peer: %v", err)
			}
			if !p.allowed && err == nil {
				t.Errorf("raft accepted an AppendEntries: %+v", resp)
			}
			// Join, with the admin token: refused by TLS, or 403.
			code, err := joinAs(t, p.f, leader.srv.URL)
			t.Logf("join: %d %v", code, err)
			if !p.allowed && code != 0 && code != http.StatusForbidden {
				t.Errorf("join answered %d, want refused by TLS or 403", code)
			}
			if p.allowed && code != http.StatusNoContent {
				t.Errorf("join by a node answered %d %v, want 204", code, err)
			}
			if p.allowed { // undo: n9 never runs
				if err := leader.raft.RemoveServer("n9", 0, 5*time.Second).Error(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	// Had a refused AppendEntries got through, the leader would have
	// jumped to its term and stepped down; an ordinary election (a loaded
	// machine missing a heartbeat) moves the term by a few at most.
	if got := leader.raft.CurrentTerm(); got >= term+100 {
		t.Errorf("leader %s: term %d, want below %d: a refused peer's AppendEntries got through", leader.id, got, term+100)
	}
	if st := leader.Status(); len(st.Members) != 3 {
		t.Errorf("members %+v, want the 3 nodes", st.Members)
	}

	// A whole node holding another CA's certificate (and trusting both
	// CAs, so it starts) cannot join either.
	strangerNode.CA = pkitest.Bundle(t, ca, other.CAFile())
	n4 := &testNode{id: "n4", dir: t.TempDir(), tls: strangerNode}
	startNode(t, n4, false, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n4.Join(ctx, []string{leader.srv.URL}); err == nil {
		t.Error("a node with another CA's certificate joined")
	}
	if st := leader.Status(); len(st.Members) != 3 || leader.raft.CurrentTerm() >= term+100 {
		t.Errorf("after n4 tried: members %+v at term %d; want the 3 nodes", st.Members, leader.raft.CurrentTerm())
	}
}

// TestTLSConfigRefused: a node whose TLS settings or certificate are
// wrong does not start, and says what is wrong.
func TestTLSConfigRefused(t *testing.T) {
	l := pkitest.New(t)
	good := l.Issue(t, pki.RoleNode, "n1", "127.0.0.1")
	app := l.Issue(t, pki.RoleAppliance, "a1", "127.0.0.1")
	tests := []struct {
		name    string
		tls     pki.Files
		httpURL string
		join    []string
		want    string // in New's error, or else Open's
	}{
		{"no CA", pki.Files{Cert: good.Cert, Key: good.Key}, "https://127.0.0.1:1", nil, "TLS.CA"},
		{"no key", pki.Files{Cert: good.Cert, CA: good.CA}, "https://127.0.0.1:1", nil, "TLS.Key"},
		{"plain http URL", good, "http://127.0.0.1:1", nil, "want https"},
		{"plain http join", good, "https://127.0.0.1:1", []string{"http://127.0.0.1:2"}, "want https"},
		{"another node's certificate", l.Issue(t, pki.RoleNode, "n2", "127.0.0.1"), "https://127.0.0.1:1", nil, "want fillcast://node/n1"},
		{"an appliance's certificate", app, "https://127.0.0.1:1", nil, "want fillcast://node/n1"},
		{"a missing file", pki.Files{Cert: good.Cert + ".gone", Key: good.Key, CA: good.CA}, "https://127.0.0.1:1", nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(Config{ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", HTTPURL: tt.httpURL, Join: tt.join, TLS: tt.tls},
				Deps{FSM: fsm.New(nil)})
			if err == nil {
				err = n.Open(context.Background())
				n.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}
