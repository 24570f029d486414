package fsm

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// RemovedLen bounds State.Removed: the removals kept, newest first
// (older ones are forgotten, and a node of theirs could join again).
const RemovedLen = 64

// ErrRemoved refuses a node whose data directory belongs to a member an
// operator removed: it must start again with an empty one.
var ErrRemoved = errors.New("removed from the cluster")

// Removal records a member an operator removed, so that the node cannot
// come back with the data directory it had (Member.Incarnation).
type Removal struct {
	ID          string    `json:"id"`
	Incarnation string    `json:"incarnation,omitempty"`
	RaftAddr    string    `json:"raft_addr,omitempty"`
	At          time.Time `json:"at"`
	By          string    `json:"by,omitempty"`
}

// CheckRemoved returns ErrRemoved, with when and by whom, when the node
// id with the data directory incarnation was removed; an empty
// incarnation (a node older than the check) is never refused.
func (s *State) CheckRemoved(id, incarnation string) error {
	r := s.Removed[id]
	if r == nil || incarnation == "" || r.Incarnation != incarnation {
		return nil
	}
	return fmt.Errorf("fsm: %w: node %s was removed at %s by %s, and this data directory is the one it had; start it with an empty data directory to join again",
		ErrRemoved, id, r.At.UTC().Format(time.RFC3339), orUnknown(r.By))
}

func orUnknown(s string) string {
	if s == "" {
		return "an operator"
	}
	return s
}

// removeMember forgets member c.ID and records its removal, keeping the
// newest RemovedLen.
func removeMember(s *State, c Command) {
	m := s.Members[c.ID]
	delete(s.Members, c.ID)
	r := &Removal{ID: c.ID, At: c.At, By: c.By}
	if m != nil {
		r.Incarnation, r.RaftAddr = m.Incarnation, m.RaftAddr
	}
	if prev := s.Removed[c.ID]; prev != nil && r.Incarnation == "" {
		return // removed again after its record: keep what is known
	}
	if s.Removed == nil {
		s.Removed = map[string]*Removal{}
	}
	s.Removed[c.ID] = r
	if len(s.Removed) <= RemovedLen {
		return
	}
	all := make([]*Removal, 0, len(s.Removed))
	for _, r := range s.Removed {
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].At.After(all[j].At) })
	for _, r := range all[RemovedLen:] {
		delete(s.Removed, r.ID)
	}
}

// ResetMembership forgets every member and removal: a state restored
// from a backup into a new cluster keeps none of the old one's nodes.
func (f *FSM) ResetMembership() {
	f.mu.Lock()
	f.state.Members = map[string]*Member{}
	f.state.Removed = map[string]*Removal{}
	f.mu.Unlock()
}
