package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/hashicorp/raft"
)

// Paths of the node-to-node endpoints the API serves (with the admin
// token) and this package calls.
const (
	ApplyPath = "/v1/internal/apply"
	// ReadIndexPath answers the leader's read index
	// (CatchUp).
	ReadIndexPath = "/v1/internal/read-index"
	JoinPath      = "/v1/cluster/join"
)

// Apply replicates cmd: directly when this node leads, else by forwarding
// it to the leader. It waits for a leader (up to ctx's deadline) during an
// election. Validation errors wrap fsm.ErrInvalid.
func (n *Node) Apply(ctx context.Context, cmd fsm.Command) error {
	if err := cmd.Validate(); err != nil {
		return err
	}
	b, err := cmd.Encode()
	if err != nil {
		return err
	}
	index, err := n.onLeader(ctx, "apply "+cmd.Op, func() error { return n.applyLocal(b) }, ApplyPath, b)
	if err != nil {
		return err
	}
	return n.waitApplied(ctx, index)
}

// onLeader runs local when this node leads, else posts body to path on
// the leader, and returns the log index the leader answered (0 when local
// ran). Through an election (no leader known, or leadership lost on the
// way) it tries again with a growing delay until ctx ends; what names
// the call in that error.
func (n *Node) onLeader(ctx context.Context, what string, local func() error, path string, body []byte) (uint64, error) {
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		var err error
		if n.IsLeader() {
			err = local()
			if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, ErrNoLeader) {
				return 0, err
			}
		} else if _, url := n.Leader(); url != "" {
			var index uint64
			if index, err = n.forward(ctx, url+path, body); !errors.Is(err, ErrNoLeader) {
				return index, err
			}
		} else {
			err = ErrNoLeader
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("cluster: %s: %w (%v)", what, err, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// ApplyLocal applies encoded command bytes on this node, which must lead,
// and returns the entry's log index: the receiving end of a forwarded
// write.
func (n *Node) ApplyLocal(b []byte) (uint64, error) {
	var cmd fsm.Command
	if err := json.Unmarshal(b, &cmd); err != nil {
		return 0, fmt.Errorf("cluster: %w: command: %v", fsm.ErrInvalid, err)
	}
	if err := cmd.Validate(); err != nil {
		return 0, err
	}
	if !n.IsLeader() {
		return 0, ErrNoLeader
	}
	f := n.raft.Apply(b, n.cfg.ApplyTimeout)
	switch err := n.result(f); {
	case errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost):
		return 0, ErrNoLeader
	case err != nil:
		return 0, err // f may still be unanswered: its index is not ours to read
	}
	return f.Index(), nil
}

func (n *Node) applyLocal(b []byte) error {
	return n.result(n.raft.Apply(b, n.cfg.ApplyTimeout))
}

// result waits for an applied entry's outcome (see wait) and returns the
// state machine's error, if any.
func (n *Node) result(f raft.ApplyFuture) error {
	if err := n.wait(f); err != nil {
		return fmt.Errorf("cluster: apply: %w", err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return err
	}
	return nil
}

// wait waits for a log entry's future, or for the node to close: raft
// drops, unanswered, the committed entries still queued for its state
// machine when it shuts down, and these futures do not watch for
// shutdown themselves.
func (n *Node) wait(f raft.Future) error { return n.waitCtx(context.Background(), f) }

// waitCtx waits for a future as wait does, or until ctx ends. The
// waiting goroutine ends if the answer comes (raft answers every future
// of a leader that steps down or shuts down).
func (n *Node) waitCtx(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-n.closed:
		return raft.ErrRaftShutdown
	case <-ctx.Done():
		return ctx.Err()
	}
}

// applied is the answer to a forwarded write.
type applied struct {
	Index uint64 `json:"index"`
}

// forward POSTs body to a node's endpoint and maps its answer back to an
// error: the body's kind to fsm.ErrExists, ErrNotFound, ErrLimit or
// fillcast.ErrConflict, else 400 →
// fsm.ErrInvalid, 409 → ErrDuplicate, 503 → ErrNoLeader. It
// returns the log index a successful write was committed at.
func (n *Node) forward(ctx context.Context, url string, body []byte) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("cluster: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+n.d.NodeToken)
	resp, err := n.d.Client.Do(req)
	if err != nil {
		// The leader may be dying: treat as no leader and retry.
		n.log.Debug("cluster: forward", "url", url, "err", err)
		return 0, ErrNoLeader
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 300 {
		var a applied
		json.Unmarshal(msg, &a)
		return a.Index, nil
	}
	var e struct {
		Error string `json:"error"`
		Kind  string `json:"kind"`
	}
	if json.Unmarshal(msg, &e) == nil && e.Error != "" {
		msg = []byte(e.Error)
	}
	switch e.Kind {
	case kindExists:
		return 0, fmt.Errorf("cluster: %w: %s", fsm.ErrExists, msg)
	case kindNotFound:
		return 0, fmt.Errorf("cluster: %w: %s", fsm.ErrNotFound, msg)
	case kindLimit:
		return 0, fmt.Errorf("cluster: %w: %s", fsm.ErrLimit, msg)
	case kindConflict:
		return 0, fmt.Errorf("cluster: %w: %s", fillcast.ErrConflict, msg)
	case kindRemoved:
		return 0, removedError(msg)
	}
	switch resp.StatusCode {
	case http.StatusBadRequest:
		return 0, fmt.Errorf("cluster: %w: %s", fsm.ErrInvalid, msg)
	case http.StatusConflict:
		return 0, fmt.Errorf("%w: %s", ErrDuplicate, msg)
	case http.StatusServiceUnavailable, http.StatusMisdirectedRequest:
		return 0, ErrNoLeader
	}
	return 0, fmt.Errorf("cluster: %s answered %s: %s", url, resp.Status, msg)
}

// JoinRequest asks the cluster to add a node as a voter.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPURL  string `json:"http_url"`
	Events   string `json:"events,omitempty"`
	// Incarnation identifies the joining node's data directory.
	Incarnation string `json:"incarnation,omitempty"`
}

// AddVoter adds a node, on the leader. Joining again with the same id and
// address is a no-op; the same id at another address is ErrDuplicate
// (remove the old node first).
func (n *Node) AddVoter(req JoinRequest) error {
	if req.ID == "" || req.RaftAddr == "" || req.HTTPURL == "" {
		return fmt.Errorf("cluster: %w: join needs id, raft_addr and http_url", fsm.ErrInvalid)
	}
	if !n.IsLeader() {
		return ErrNoLeader
	}
	if err := n.checkRemoved(req.ID, req.Incarnation); err != nil {
		return err
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(req.ID) || s.Address == raft.ServerAddress(req.RaftAddr) {
			if s.ID == raft.ServerID(req.ID) && s.Address == raft.ServerAddress(req.RaftAddr) {
				return nil
			}
			return fmt.Errorf("%w: %s is %s at %s", ErrDuplicate, req.ID, s.ID, s.Address)
		}
	}
	if err := n.wait(n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, n.cfg.ApplyTimeout)); err != nil {
		return fmt.Errorf("cluster: add voter %s: %w", req.ID, err)
	}
	n.log.Info("cluster: node joined", "id", req.ID, "raft", req.RaftAddr)
	// The node may have announced itself already (it counts as a member
	// once the configuration entry is appended): its record, with the
	// start it waits to see (WaitCaughtUp, Ready), stays.
	var announced bool
	n.fsm.Read(func(s *fsm.State) {
		m := s.Members[req.ID]
		announced = m != nil && m.RaftAddr == req.RaftAddr && m.Started != 0
	})
	if announced {
		return nil
	}
	return n.applyLocal(mustEncode(fsm.Command{Op: fsm.OpPutMember, Member: &fsm.Member{ID: req.ID, RaftAddr: req.RaftAddr, HTTPURL: req.HTTPURL, Events: req.Events, Incarnation: req.Incarnation}}))
}

func mustEncode(c fsm.Command) []byte {
	b, err := c.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

// Join asks the node at any of urls to add this node, retrying until one
// accepts or ctx ends. A follower forwards the request to its leader.
func (n *Node) Join(ctx context.Context, urls []string) error {
	body, _ := json.Marshal(n.joinRequest())
	for delay := 200 * time.Millisecond; ; delay = min(2*delay, 3*time.Second) {
		var err error
		for _, u := range urls {
			if _, err = n.forward(ctx, u+JoinPath, body); err == nil {
				n.log.Info("cluster: joined", "via", u)
				return nil
			}
			if errors.Is(err, ErrDuplicate) || errors.Is(err, fsm.ErrInvalid) || errors.Is(err, fsm.ErrRemoved) {
				return err
			}
		}
		n.log.Info("cluster: join not accepted yet, retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: join %v: %w", urls, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// ForwardJoin sends a join request to the leader (the follower side of
// POST /v1/cluster/join).
func (n *Node) ForwardJoin(ctx context.Context, req JoinRequest) error {
	if n.IsLeader() {
		return n.AddVoter(req)
	}
	_, url := n.Leader()
	if url == "" {
		return ErrNoLeader
	}
	body, _ := json.Marshal(req)
	_, err := n.forward(ctx, url+JoinPath, body)
	return err
}

// Status reports this node's view of the cluster.
func (n *Node) Status() fillcast.ClusterStatus {
	lid, lurl := n.Leader()
	st := fillcast.ClusterStatus{ID: n.cfg.ID, State: n.raft.State().String(), Leader: lid, LeaderURL: lurl,
		Term: n.raft.Stats()["term"], AppliedIndex: n.fsm.AppliedIndex()}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return st
	}
	urls := map[string]string{}
	n.fsm.Read(func(s *fsm.State) {
		for id, m := range s.Members {
			urls[id] = m.HTTPURL
		}
	})
	for _, s := range f.Configuration().Servers {
		st.Members = append(st.Members, fillcast.ClusterMember{ID: string(s.ID), RaftAddr: string(s.Address),
			HTTPURL: urls[string(s.ID)], Voter: s.Suffrage == raft.Voter, Leader: string(s.ID) == lid})
	}
	return st
}
