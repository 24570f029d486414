// Package cluster runs one control-plane node's hashicorp/raft instance:
// a write-ahead log (raft-wal) and snapshots on disk under the node's data
// directory, a TCP transport, bootstrap of the first node and joins of the
// others, and Apply that forwards to the leader when this node is a
// follower, so any node accepts writes.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// Config configures a Node.
type Config struct {
	// ID names the node in the cluster. Required, unique.
	ID string
	// DataDir holds the raft log and snapshots. Required.
	DataDir string
	// RaftAddr is the host:port the raft transport listens on and
	// advertises. Required (a concrete address, not :0, unless Transport is
	// given).
	RaftAddr string
	// HTTPURL is where this node's API is reached by the other nodes.
	// Required.
	HTTPURL string
	// Bootstrap makes a node without existing state start a new cluster
	// of itself.
	Bootstrap bool
	// AdminToken authorises node-to-node calls.
	AdminToken string
	// HeartbeatTimeout and ElectionTimeout tune raft; zero means 1 s.
	HeartbeatTimeout, ElectionTimeout time.Duration
	// ApplyTimeout bounds one write. Zero means 10 s.
	ApplyTimeout time.Duration
	// SnapshotThreshold is how many log entries trigger a snapshot. Zero
	// means 8192.
	SnapshotThreshold uint64
	// Transport replaces the TCP transport (tests use raft's in-memory
	// transport to cut links).
	Transport raft.Transport
	// RaftLog receives raft's own log lines; nil discards them.
	RaftLog io.Writer
	// Client is used for node-to-node HTTP; nil means a client with a 10 s
	// timeout.
	Client *http.Client
}

// Validate fills defaults and reports the first problem.
func (c *Config) Validate() error {
	switch {
	case c.ID == "":
		return errors.New("cluster: --id is required")
	case c.DataDir == "":
		return errors.New("cluster: --data is required")
	case c.RaftAddr == "" && c.Transport == nil:
		return errors.New("cluster: --raft address is required")
	case c.HTTPURL == "":
		return errors.New("cluster: the node's HTTP URL is required")
	}
	if u, err := url.Parse(c.HTTPURL); err != nil || u.Host == "" {
		return fmt.Errorf("cluster: HTTP URL %q is not a URL", c.HTTPURL)
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = time.Second
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = time.Second
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.RaftLog == nil {
		c.RaftLog = io.Discard
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return nil
}

// Errors callers branch on.
var (
	ErrNoLeader  = errors.New("cluster: no leader (is a majority of nodes up?)")
	ErrDuplicate = errors.New("cluster: a different node already uses this id")
)

// Node is a running raft member.
type Node struct {
	cfg   Config
	log   *slog.Logger
	fsm   *fsm.FSM
	raft  *raft.Raft
	wal   *wal.WAL
	meta  *metadb.BoltMetaDB
	trans raft.Transport
	// started marks this process's announcement (see WaitCaughtUp).
	started int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New opens (or creates) the node's raft state under cfg.DataDir and
// starts raft. A bootstrap node with no state forms a cluster of one.
func New(cfg Config, f *fsm.FSM, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: cfg.RaftLog})
	// The WAL does not close the meta store it opens itself (raft-wal
	// v0.4.0), which keeps its file lock after Close; own it instead.
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(filepath.Join(dir, "wal"), wal.WithLogger(hl), wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return nil, fmt.Errorf("cluster: open raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		w.Close()
		meta.Close()
		return nil, fmt.Errorf("cluster: open snapshots: %w", err)
	}
	trans := cfg.Transport
	if trans == nil {
		addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
		if err != nil {
			w.Close()
			meta.Close()
			return nil, fmt.Errorf("cluster: --raft %q: %w", cfg.RaftAddr, err)
		}
		var advertise net.Addr = addr
		if addr.Port == 0 {
			advertise = nil // advertise the port the listener got
		}
		if trans, err = raft.NewTCPTransportWithLogger(cfg.RaftAddr, advertise, 3, 10*time.Second, hl); err != nil {
			w.Close()
			meta.Close()
			return nil, fmt.Errorf("cluster: raft transport: %w", err)
		}
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hl
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = min(rc.LeaderLeaseTimeout, cfg.HeartbeatTimeout/2)
	rc.SnapshotThreshold = cfg.SnapshotThreshold

	existing, err := raft.HasExistingState(w, w, snaps)
	if err != nil {
		w.Close()
		meta.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	r, err := raft.NewRaft(rc, f, w, w, snaps, trans)
	if err != nil {
		w.Close()
		meta.Close()
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	n := &Node{cfg: cfg, log: log, fsm: f, raft: r, wal: w, meta: meta, trans: trans, started: time.Now().UnixNano()}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if cfg.Bootstrap && !existing {
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
		if err := r.BootstrapCluster(conf).Error(); err != nil {
			n.Close()
			return nil, fmt.Errorf("cluster: bootstrap: %w", err)
		}
		log.Info("cluster: bootstrapped a new cluster", "id", cfg.ID)
	}
	n.wg.Add(1)
	go n.announce()
	return n, nil
}

// announce records this node's HTTP URL in the replicated member list
// (once a leader exists), so followers can forward writes to it. It
// retries until it succeeds or the node closes.
func (n *Node) announce() {
	defer n.wg.Done()
	self := fsm.Member{ID: n.cfg.ID, RaftAddr: string(n.trans.LocalAddr()), HTTPURL: n.cfg.HTTPURL, Started: n.started}
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		var current *fsm.Member
		n.fsm.Read(func(s *fsm.State) { current = s.Members[n.cfg.ID] })
		if current != nil && *current == self {
			return
		}
		// Only members of the raft configuration may announce; a node
		// waiting to be joined has no leader to talk to yet.
		if n.inConfiguration() {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
			err := n.Apply(ctx, fsm.Command{Op: fsm.OpPutMember, Member: &self})
			cancel()
			if err == nil {
				return
			}
			n.log.Debug("cluster: announce", "err", err)
		}
		select {
		case <-n.ctx.Done():
			return
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

// Close shuts raft down and closes the log. Safe to call twice.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		n.cancel()
		n.wg.Wait()
		err = n.raft.Shutdown().Error()
		if c, ok := n.trans.(raft.WithClose); ok {
			c.Close()
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
	for {
		var seen bool
		n.fsm.Read(func(s *fsm.State) {
			m := s.Members[n.cfg.ID]
			seen = m != nil && m.Started == n.started
		})
		if seen {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: wait for the log to replay: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
