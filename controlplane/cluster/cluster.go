// Package cluster runs one control-plane node's hashicorp/raft instance:
// a write-ahead log (raft-wal) and snapshots on disk under the node's data
// directory (taken by entry count, by bytes and after a migration moved
// file lists out of the state: snapshots.go), a TCP transport (mutual
// TLS with Config.TLS), bootstrap of the first node and joins of the
// others, and Apply that forwards to the leader when this node is a
// follower, so any node accepts writes.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// Deps are what a Node works with.
type Deps struct {
	// FSM is the replicated state machine. Required.
	FSM *fsm.FSM
	// NodeToken is the bearer token of calls to other nodes (join,
	// forwarded writes): auth.NodeToken of the admin key.
	NodeToken string
	// Log receives the node's own log lines; nil discards them.
	Log *slog.Logger
	// RaftLog receives raft's log lines; nil discards them.
	RaftLog io.Writer
	// Transport replaces the TCP transport on Config.RaftAddr (tests use
	// raft's in-memory transport to cut links).
	Transport raft.Transport
	// Client is used for node-to-node HTTP; nil means a client with a
	// 10 s timeout (made by Open, presenting the node's certificate,
	// with Config.TLS).
	Client *http.Client
}

// Errors callers branch on.
var (
	ErrNoLeader  = errors.New("cluster: no leader (is a majority of nodes up?)")
	ErrDuplicate = errors.New("cluster: a different node already uses this id")
)

// Node is one raft member. New builds it; Open starts raft; Run joins
// the cluster and announces the node; Close stops raft.
type Node struct {
	cfg    Config
	d      Deps
	log    *slog.Logger
	fsm    *fsm.FSM
	raft   *raft.Raft
	wal    *wal.WAL
	meta   *metadb.BoltMetaDB
	trans  raft.Transport
	owned  *http.Transport // Deps.Client's, when Open made it
	closed chan struct{}   // closed by Close: waits for raft answers end
	// started marks this process's announcement (see WaitCaughtUp).
	started int64
	once    sync.Once
	// reads coalesces CatchUp's questions to the leader.
	reads readIndexes
	// metrics are measured as raft runs (metrics.go).
	metrics *metrics
	// incarnation identifies the data directory (fsm.Member.Incarnation).
	incarnation string
	// logPeers caches membersInLog for watchMembership.
	logPeers map[string]string
	// logBytes measures the log since the last snapshot (snapshots.go).
	logBytes *logBytes
}

// New checks cfg and returns a Node that is not started: it does no I/O.
func New(cfg Config, d Deps) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RaftAddr == "" && d.Transport == nil {
		return nil, fillcast.ConfigErrorf("cluster", "RaftAddr", "required: the host:port of the raft transport")
	}
	if d.FSM == nil {
		return nil, errors.New("cluster: Deps.FSM is required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.RaftLog == nil {
		d.RaftLog = io.Discard
	}
	if d.Client == nil && cfg.TLS.IsZero() {
		d.Client = &http.Client{Timeout: 10 * time.Second}
	}
	m := newMetrics()
	return &Node{cfg: cfg.withDefaults(), d: d, log: d.Log, fsm: d.FSM, trans: d.Transport, closed: make(chan struct{}), metrics: m,
		logBytes: newLogBytes(cfg.withDefaults(), m)}, nil
}

// Open opens (or creates) the node's raft state under Config.DataDir and
// starts raft, which replays the log into the state machine. A bootstrap
// node with no state forms a cluster of one. Close undoes it.
func (n *Node) Open(context.Context) (err error) {
	cfg := n.cfg
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: n.d.RaftLog})
	// What opened is closed again if a later step fails.
	var undo []func() error
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			n.raft = nil
		}
	}()
	// The WAL does not close the meta store it opens itself (raft-wal
	// v0.4.0), which keeps its file lock after Close; own it instead.
	n.meta = &metadb.BoltMetaDB{}
	undo = append(undo, n.meta.Close)
	if n.wal, err = wal.Open(filepath.Join(dir, "wal"), wal.WithLogger(hl), wal.WithMetaStore(n.meta), wal.WithSegmentSize(cfg.segmentBytes)); err != nil {
		return fmt.Errorf("cluster: open raft log: %w", err)
	}
	undo = append(undo, n.wal.Close)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		return fmt.Errorf("cluster: open snapshots: %w", err)
	}
	if n.trans == nil {
		nt, err := n.openTransport(hl)
		if err != nil {
			return err
		}
		n.trans = nt
		undo = append(undo, nt.Close)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hl
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = min(rc.LeaderLeaseTimeout, cfg.HeartbeatTimeout/2)
	// The node takes every snapshot itself (snapshotLoop), by count as
	// well: raft's own trigger never fires.
	rc.SnapshotThreshold = math.MaxUint64
	rc.TrailingLogs = cfg.TrailingLogs

	existing, err := raft.HasExistingState(n.wal, n.wal, snaps)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if !existing {
		n.incarnation, err = newIncarnation(dir)
	} else {
		n.incarnation, err = loadIncarnation(dir)
	}
	if err != nil {
		return err
	}
	if n.raft, err = raft.NewRaft(rc, timedFSM{n.fsm, n.metrics, n.logBytes}, n.wal, n.wal, snaps, n.trans); err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft.RegisterObserver(n.metrics.observer(rc.LocalID))
	undo = append(undo, func() error { return n.raft.Shutdown().Error() })
	n.started = time.Now().UnixNano()
	if cfg.Bootstrap && !existing {
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: n.trans.LocalAddr()}}}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
			return fmt.Errorf("cluster: bootstrap: %w", err)
		}
		n.log.Info("cluster: bootstrapped a new cluster", "id", cfg.ID)
	}
	return nil
}

// Run asks the nodes Config.Join names to add this one (a node already
// in the cluster is added again harmlessly) while it records this node's
// HTTP URL in the replicated member list once it is a member, and
// returns when ctx is done. A join refused for good is logged; the node
// keeps serving its state, which an operator can still inspect. A node
// an operator removed (its data directory refused, fsm.ErrRemoved) ends
// Run with that error, whether it learns so joining, announcing itself
// or, having no leader, asking the members it knows (watchMembership).
// Meanwhile it takes the snapshots raft does not take by itself: by size
// and after file lists left the state (snapshotLoop).
func (n *Node) Run(ctx context.Context) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	removed := func(err error) {
		if errors.Is(err, fsm.ErrRemoved) {
			n.log.Error("cluster: refused by the cluster", "err", err)
			stop(err)
		}
	}
	var bg sync.WaitGroup
	if len(n.cfg.Join) > 0 {
		bg.Go(func() {
			if err := n.Join(ctx, n.cfg.Join); err != nil && ctx.Err() == nil {
				n.log.Error("cluster: join failed", "err", err)
				removed(err)
			}
		})
	}
	bg.Go(func() { removed(n.watchMembership(ctx)) })
	bg.Go(func() { n.snapshotLoop(ctx) })
	removed(n.announce(ctx))
	<-ctx.Done()
	bg.Wait()
	if err := context.Cause(ctx); errors.Is(err, fsm.ErrRemoved) {
		return err
	}
	return nil
}

// announce records this node's HTTP URL in the replicated member list
// (once a leader exists), so followers can forward writes to it. It
// retries until it succeeds or ctx ends; a removed node's is refused for
// good (fsm.ErrRemoved, returned).
func (n *Node) announce(ctx context.Context) error {
	self := fsm.Member{ID: n.cfg.ID, RaftAddr: string(n.trans.LocalAddr()), HTTPURL: n.cfg.HTTPURL, Events: n.cfg.Events,
		Started: n.started, Incarnation: n.incarnation}
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		var current *fsm.Member
		n.fsm.Read(func(s *fsm.State) { current = s.Members[n.cfg.ID] })
		if current != nil && *current == self {
			return nil
		}
		// Only members of the raft configuration may announce; a node
		// waiting to be joined has no leader to talk to yet.
		if n.inConfiguration() {
			actx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
			err := n.Apply(actx, fsm.Command{Op: fsm.OpPutMember, Member: &self})
			cancel()
			if err == nil || errors.Is(err, fsm.ErrRemoved) {
				return err
			}
			n.log.Debug("cluster: announce", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

func (n *Node) inConfiguration() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(n.cfg.ID) {
			return true
		}
	}
	return false
}

// Close shuts raft down and closes the log: after Run has returned, or
// to end writes in flight. Safe to call twice, and after a failed Open.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		close(n.closed)
		if n.raft == nil {
			return // Open failed and cleaned up after itself
		}
		err = n.raft.Shutdown().Error()
		if nt, ok := n.trans.(*raft.NetworkTransport); ok {
			// Close the pooled connections too: Close alone leaves
			// them open, and the peers' goroutines reading them.
			nt.CloseStreams()
		}
		if c, ok := n.trans.(raft.WithClose); ok {
			c.Close()
		}
		if n.owned != nil {
			n.owned.CloseIdleConnections()
		}
		if cerr := n.wal.Close(); err == nil {
			err = cerr
		}
		if cerr := n.meta.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.ID }

// FSM returns the state machine.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's id and HTTP URL, or empty strings when no
// leader is known (or its URL is not yet recorded).
func (n *Node) Leader() (id, httpURL string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	n.fsm.Read(func(s *fsm.State) {
		if m := s.Members[string(lid)]; m != nil {
			httpURL = m.HTTPURL
		}
	})
	return string(lid), httpURL
}

// WaitCaughtUp blocks until this node's own announcement, written through
// the leader at start-up, has come back through the log: from then on its
// reads reflect everything committed before it started (after a restart
// the log replays only once a leader commits).
func (n *Node) WaitCaughtUp(ctx context.Context) error {
	for !n.announced() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: wait for the log to replay: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// announced reports whether this process's own member record (written
// at start-up through the leader) has come back through the log.
func (n *Node) announced() (seen bool) {
	n.fsm.Read(func(s *fsm.State) {
		m := s.Members[n.cfg.ID]
		seen = m != nil && m.Started == n.started
	})
	return seen
}
