package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/stream"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/auth/pki/pkitest"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
)

// logBuf collects a node's log lines, for a test to wait on.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// startTLSNode starts a node serving with the TLS files f, logging to
// log; it bootstraps without join.
func startTLSNode(t *testing.T, id string, f pki.Files, join []string, log *logBuf) *testNode {
	t.Helper()
	keys, _ := auth.ParseKeys(strings.NewReader(keyFile))
	// Raft's default timing: the test counts on a leader that lasts
	// while it refuses strangers, on a busy machine too.
	cfg := Config{ID: id, DataDir: t.TempDir(), HTTP: freeAddr(t), TLS: f, Join: join, HeartbeatTimeout: time.Second, ElectionTimeout: time.Second}
	return runNode(t, cfg, Deps{AdminToken: "adm", Keys: keys, Log: slog.New(slog.NewTextHandler(log, nil))})
}

// rawRaft dials a raft address holding f, sends an AppendEntries of term
// 0 (which a node answers and ignores) and reads the answer.
func rawRaft(f pki.Files, addr string) error {
	c, err := pki.ClientTLS(f.Cert, f.Key, f.CA)
	if err != nil {
		return err
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte{0, 0x80}); err != nil { // rpcAppendEntries, an empty msgpack map
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	return err
}

// TestMutualTLSCluster: three nodes with certificates of one CA form a
// cluster over TLS, which the client reaches over https; a node with
// another CA's certificate cannot join, and no certificate but a node's
// from the CA opens raft; the members and the leader stay as they were.
func TestMutualTLSCluster(t *testing.T) {
	lab := pkitest.New(t)
	logs := map[string]*logBuf{}
	var nodes []*testNode
	for i, id := range []string{"n1", "n2", "n3"} {
		logs[id] = &logBuf{}
		var join []string
		if i > 0 {
			join = []string{nodes[0].url}
		}
		nodes = append(nodes, startTLSNode(t, id, lab.Issue(t, pki.RoleNode, id, "127.0.0.1"), join, logs[id]))
	}

	// An operator's client over https, presenting its certificate.
	op := lab.Issue(t, pki.RoleOperator, "alice")
	tc, err := pki.ClientTLS(op.Cert, op.Key, op.CA)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{URLs: []string{nodes[0].url}}, client.Deps{TLS: tc, Token: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st fillcast.ClusterStatus
	poll.Until(t, 15*time.Second, "3 members over https and a leader", func() bool {
		st, err = c.Cluster(ctx)
		if err != nil || st.Leader == "" || len(st.Members) != 3 {
			return false
		}
		for _, m := range st.Members {
			if !strings.HasPrefix(m.HTTPURL, "https://127.0.0.1:") {
				return false
			}
		}
		return true
	})
	site := fillcast.Site{Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}
	if err := c.Do(ctx, http.MethodPut, "/v1/sites/isp1", site, nil); err != nil {
		t.Fatalf("a write over https: %v", err)
	}
	poll.Until(t, 10*time.Second, "isp1 on every node", func() bool {
		for _, n := range nodes {
			var ok bool
			n.Raft().FSM().Read(func(s *fsm.State) { _, ok = s.Sites["isp1"] })
			if !ok {
				return false
			}
		}
		return true
	})
	// The event stream's routes run under the same mutual TLS: the
	// stream forms with a replica on every node.
	poll.Until(t, 30*time.Second, "the event stream with 3 current replicas", func() bool {
		js := nodes[0].Stream().JetStream()
		if js == nil {
			return false
		}
		st, err := js.Stream(ctx, stream.Name)
		if err != nil {
			return false
		}
		ci := st.CachedInfo().Cluster
		if st.CachedInfo().Config.Replicas != 3 || ci == nil || ci.Leader == "" || len(ci.Replicas) != 2 {
			return false
		}
		for _, r := range ci.Replicas {
			if !r.Current {
				return false
			}
		}
		return true
	})
	// A viewer without a certificate still reads over https.
	viewer := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.RootCAs}}
	defer viewer.CloseIdleConnections()
	resp, err := (&http.Client{Transport: viewer}).Get(nodes[1].url + "/v1/plans")
	if err != nil {
		t.Fatalf("a viewer without a certificate: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a viewer without a certificate: %s", resp.Status)
	}

	var leader *testNode
	for _, n := range nodes {
		if n.Raft().IsLeader() {
			leader = n
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	term := leader.Raft().Status().Term

	// A node holding another CA's certificate, and trusting both CAs
	// so that it starts, is refused at TLS every time it asks to join.
	other := pkitest.New(t)
	stranger := other.Issue(t, pki.RoleNode, "n4", "127.0.0.1")
	stranger.CA = pkitest.Bundle(t, lab.CAFile(), other.CAFile())
	n4log := &logBuf{}
	startTLSNode(t, "n4", stranger, []string{nodes[0].url, nodes[1].url}, n4log)
	poll.Until(t, 15*time.Second, "n4 refused twice", func() bool { return n4log.count("join not accepted yet") >= 2 })

	// Raft: only a node certificate from the CA opens a connection.
	peers := []struct {
		name string
		f    pki.Files
		ok   bool
	}{
		{"a node certificate from the CA", lab.Issue(t, pki.RoleNode, "n5", "127.0.0.1"), true},
		{"n4's certificate", pki.Files{Cert: stranger.Cert, Key: stranger.Key, CA: lab.CAFile()}, false},
		{"a self-signed node certificate", pkitest.SelfSigned(t, lab.CAFile(), "fillcast://node/n6"), false},
		{"an appliance certificate from the CA", lab.Issue(t, pki.RoleAppliance, "a1"), false},
		{"no certificate", pki.Files{CA: lab.CAFile()}, false},
	}
	refusedBefore := logs[leader.cfg.ID].count("refused a raft connection")
	for _, p := range peers {
		err := rawRaft(p.f, leader.cfg.RaftAddr)
		var ne net.Error
		switch {
		case p.ok && err != nil:
			t.Errorf("raft from %s: %v, want an answer", p.name, err)
		case !p.ok && err == nil:
			t.Errorf("raft from %s answered", p.name)
		case !p.ok && errors.As(err, &ne) && ne.Timeout():
			t.Errorf("raft from %s: %v, want refused, not left hanging", p.name, err)
		}
	}
	poll.Until(t, 5*time.Second, "the refusals in the leader's log", func() bool {
		return logs[leader.cfg.ID].count("refused a raft connection")-refusedBefore >= len(peers)-1
	})

	if st := leader.Raft().Status(); len(st.Members) != 3 || st.Leader != leader.cfg.ID || st.Term != term {
		t.Errorf("after the refusals: %d members, leader %s at term %s; want 3 under %s at term %s", len(st.Members), st.Leader, st.Term, leader.cfg.ID, term)
	}
}

// TestNodeClients: the client ingest publishes with trusts the cluster
// CA and presents the node's certificate; the one that passes
// heartbeats on talks to nodes only.
func TestNodeClients(t *testing.T) {
	lab := pkitest.New(t)
	origin := lab.Issue(t, pki.RoleServer, "origin", "127.0.0.1")
	seen := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role, id, _ := pki.PeerIdentity(r.TLS)
		seen <- r.Method + " " + role + " " + id
		w.WriteHeader(http.StatusCreated)
	}))
	var err error
	if srv.TLS, err = pki.ServerTLS(origin.Cert, origin.Key, origin.CA); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()

	n := startTLSNode(t, "n1", lab.Issue(t, pki.RoleNode, "n1", "127.0.0.1"), nil, &logBuf{})
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/t1/master.m3u8", strings.NewReader("#EXTM3U\n"))
	resp, err := n.tls.originClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := <-seen; resp.StatusCode != http.StatusCreated || got != "PUT node n1" {
		t.Errorf("origin answered %s and saw %q; want 201 and PUT node n1", resp.Status, got)
	}

	peers := n.tls.peerClient()
	if resp, err := peers.Get(srv.URL + "/t1/master.m3u8"); err == nil {
		resp.Body.Close()
		t.Errorf("the peer client talked to the origin, which is no node: %s", resp.Status)
	}
	resp, err = peers.Get(n.url + "/v1/cluster")
	if err != nil {
		t.Fatalf("the peer client to a node: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the peer client to a node: %s", resp.Status)
	}
}

// TestTLSConfig: the TLS settings are all or nothing, the URLs nodes are
// reached at follow them, and a wrong certificate stops Run before the
// node listens.
func TestTLSConfig(t *testing.T) {
	lab := pkitest.New(t)
	f := lab.Issue(t, pki.RoleNode, "n1", "127.0.0.1")
	base := Config{ID: "n1", DataDir: "d", HTTP: "127.0.0.1:7000", RaftAddr: "127.0.0.1:7001", Bootstrap: true, TLS: f}
	tests := []struct {
		name      string
		change    func(*Config)
		wantField string
	}{
		{"all three", func(*Config) {}, ""},
		{"no CA", func(c *Config) { c.TLS.CA = "" }, "TLS.CA"},
		{"no key", func(c *Config) { c.TLS.Key = "" }, "TLS.Key"},
		{"a CA alone", func(c *Config) { c.TLS = pki.Files{CA: f.CA} }, "TLS.Cert"},
		{"an http advertise URL", func(c *Config) { c.AdvertiseURL = "http://cp1:7000" }, "AdvertiseURL"},
		{"an http join URL", func(c *Config) { c.Bootstrap, c.Join = false, []string{"http://cp1:7000"} }, "Join"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.change(&c)
			err := c.Validate()
			var ce *fillcast.ConfigError
			if got := ""; errors.As(err, &ce) {
				got = ce.Field
				if got != tt.wantField {
					t.Errorf("Validate = %v, want field %q", err, tt.wantField)
				}
			} else if err != nil || tt.wantField != "" {
				t.Errorf("Validate = %v, want field %q", err, tt.wantField)
			}
		})
	}
	if got := base.withDefaults().AdvertiseURL; got != "https://127.0.0.1:7000" {
		t.Errorf("default AdvertiseURL with TLS = %q, want https", got)
	}

	keys, _ := auth.ParseKeys(strings.NewReader(keyFile))
	wrong := base
	wrong.DataDir, wrong.HTTP, wrong.TLS = t.TempDir(), freeAddr(t), lab.Issue(t, pki.RoleNode, "n2", "127.0.0.1")
	n, err := New(wrong, Deps{AdminToken: "adm", Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "controlplane: tls:") || !strings.Contains(err.Error(), "want fillcast://node/n1") {
		t.Errorf("Run with n2's certificate = %v, want the tls part's error", err)
	}
}
