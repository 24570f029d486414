package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// MaxReadyLag is how many committed entries a ready node may still have
// to apply: a node under a burst of writes is a little behind, not stale.
const MaxReadyLag = 1000

// Ready reports why this node should not take traffic yet, or nil: it
// knows a leader (a follower heard from it within two heartbeat
// timeouts), it has replayed its log past its own start-up announcement,
// and it has applied all but MaxReadyLag of the entries it knows
// committed.
func (n *Node) Ready() error {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return ErrNoLeader
	}
	if n.raft.State() != raft.Leader {
		if since := time.Since(n.raft.LastContact()); since > 2*n.cfg.HeartbeatTimeout {
			return fmt.Errorf("cluster: no word from the leader for %s", since.Round(time.Millisecond))
		}
	}
	if !n.announced() {
		return errors.New("cluster: replaying the log (this node's start is not applied yet)")
	}
	// raft's applied index: it counts a snapshot installed and entries
	// the state machine never sees (no-ops, configurations).
	if applied, committed := n.raft.AppliedIndex(), n.raft.CommitIndex(); applied+MaxReadyLag < committed {
		return fmt.Errorf("cluster: applied %d of %d committed entries", applied, committed)
	}
	return nil
}
