package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/billing/subscriptions"
	"github.com/fillcast/fillcast/controlplane"
	"github.com/fillcast/fillcast/controlplane/stream"
)

// adminToken is the node's bootstrap admin key.
const adminToken = "bench-billing-admin"

// renewEvery keeps the leader's own hourly pass out of the way: the
// bench runs every pass itself.
const renewEvery = 24 * 365 * time.Hour

// node is a control-plane node running in this process.
type node struct {
	*controlplane.Node
	url  string
	stop func() error
}

// nodeConfig is the node of spec: one voter that bootstraps its cluster
// (or restarts it, on a data directory it made before), on the addresses
// the parent chose once, so that every child runs the same node.
func nodeConfig(s childSpec) controlplane.Config {
	return controlplane.Config{
		ID: "n1", DataDir: s.DataDir, HTTP: s.HTTP, RaftAddr: s.Raft, Bootstrap: true,
		Events:          stream.Config{Listen: s.Events},
		AccountsDB:      s.DSN,
		Billing:         subscriptions.Config{PassWorkers: s.Workers, PassPage: s.Page},
		PaymentProvider: "test:" + s.ProviderDir,
		RenewEvery:      renewEvery,
	}
}

// startNode runs the node of cfg until stop, and returns once it is
// ready, leads, and has replayed its log (cluster.Node.WaitCaughtUp):
// after a restart the log replays only once the leader commits, and a
// pass on a state not caught up would miss what the log holds.
func startNode(ctx context.Context, cfg controlplane.Config, log io.Writer) (*node, error) {
	keys, err := signingKeys()
	if err != nil {
		return nil, err
	}
	lg := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := controlplane.New(cfg, controlplane.Deps{AdminToken: adminToken, Keys: keys, Log: lg, RaftLog: log})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(rctx) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	wait, cancelWait := context.WithTimeout(ctx, 5*time.Minute)
	defer cancelWait()
	select {
	case <-n.Ready():
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("node stopped before it was ready: %w", err)
	case <-wait.Done():
		stop()
		return nil, fmt.Errorf("node not ready: %w", wait.Err())
	}
	if err := n.Raft().WaitCaughtUp(wait); err != nil {
		stop()
		return nil, err
	}
	if !n.Raft().IsLeader() {
		stop()
		return nil, errors.New("the node replayed its log but does not lead its one-node cluster")
	}
	return &node{Node: n, url: "http://" + cfg.HTTP, stop: stop}, nil
}

func signingKeys() (*auth.Keys, error) {
	k := make([]byte, 32)
	rand.Read(k)
	return auth.ParseKeys(strings.NewReader("k1 " + hex.EncodeToString(k) + "\n"))
}
