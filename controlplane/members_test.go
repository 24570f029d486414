package controlplane

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestMembership: an administrator removes a dead voter through a
// follower; the cluster writes on with the two left; the removed node
// started again on its old data directory is refused with a clear error
// (Run ends), while the same id with an empty directory joins again.
// /readyz follows: ready with a leader and a caught-up log, 503 without
// a quorum.
func TestMembership(t *testing.T) {
	n1 := startNode(t, "n1", nil)
	n2 := startNode(t, "n2", []string{n1.url})
	dir3 := t.TempDir()
	n3cfg := func(dir string) Config {
		cfg := Config{ID: "n3", DataDir: dir, HTTP: freeAddr(t), RaftAddr: freeAddr(t), Join: []string{n1.url}, Origin: "http://127.0.0.1:9"}
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 300*time.Millisecond, 300*time.Millisecond
		cfg.Events.Listen = freeAddr(t)
		return cfg
	}
	n3 := runNode(t, n3cfg(dir3), Deps{AdminToken: "adm", Keys: testKeys()})
	members := func(want int) {
		t.Helper()
		poll.Until(t, 20*time.Second, "members", func() bool {
			code, b := call(t, "GET", n1.url+"/v1/cluster", nil, true)
			return code == 200 && bytes.Count(b, []byte(`"raft_addr"`)) == want && bytes.Contains(b, []byte(`"leader":"n`))
		})
	}
	members(3)
	for _, n := range []*testNode{n1, n2, n3} {
		poll.Until(t, 20*time.Second, "ready "+n.url, func() bool {
			code, b := call(t, "GET", n.url+"/readyz", nil, false)
			return code == 200 && string(b) == "ready\n"
		})
	}

	n3.stop()
	if code, b := call(t, "DELETE", n2.url+"/v1/cluster/members/n3", nil, false); code != 401 {
		t.Errorf("remove without a token: %d %s", code, b)
	}
	var code int
	var b []byte
	poll.Until(t, 20*time.Second, "n3 removed", func() bool {
		code, b = call(t, "DELETE", n2.url+"/v1/cluster/members/n3", nil, true)
		return code == 204
	})
	members(2)
	for _, tt := range []struct {
		id   string
		want int
	}{{"n3", 204}, {"nope", 404}} {
		if code, b := call(t, "DELETE", n1.url+"/v1/cluster/members/"+tt.id, nil, true); code != tt.want {
			t.Errorf("remove %s: %d %s, want %d", tt.id, code, b, tt.want)
		}
	}
	if code, b := call(t, "PUT", n2.url+"/v1/sites/s1", fillcast.Site{Kind: "isp", Region: "eu"}, true); code != 200 {
		t.Fatalf("write with two members left: %d %s", code, b)
	}

	// The removed node comes back with its old data directory: asked to
	// join, and, started with --bootstrap instead, once it finds no leader.
	for _, join := range []bool{true, false} {
		cfg := n3cfg(dir3)
		if !join {
			cfg.Join, cfg.Bootstrap = nil, true // bootstrap: ignored with state
		}
		old, err := New(cfg, Deps{AdminToken: "adm", Keys: testKeys()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = old.Run(ctx)
		cancel()
		if !errors.Is(err, fsm.ErrRemoved) || !strings.Contains(err.Error(), "empty data directory") {
			t.Fatalf("removed node on its old data directory (join %v): Run = %v, want it refused", join, err)
		}
		t.Logf("refused (join %v): %v", join, err)
		members(2)
	}

	// The same id with an empty directory is a new node: welcome.
	n3 = runNode(t, n3cfg(t.TempDir()), Deps{AdminToken: "adm", Keys: testKeys()})
	members(3)

	// Without a quorum, no node is ready.
	n2.stop()
	n3.stop()
	poll.Until(t, 20*time.Second, "n1 not ready without a quorum", func() bool {
		code, b = call(t, "GET", n1.url+"/readyz", nil, false)
		return code == 503
	})
	if !strings.Contains(string(b), "not ready") {
		t.Errorf("readyz without a quorum: %s", b)
	}
	if code, _ := call(t, "GET", n1.url+"/healthz", nil, false); code != 200 {
		t.Errorf("healthz without a quorum: %d, want 200 (liveness)", code)
	}
}
