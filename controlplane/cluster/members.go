package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fillcast/fillcast/controlplane/atomicfile"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/hashicorp/raft"
)

// RemovePath is where a follower passes an operator's removal of a member
// on to the leader (node token required).
const RemovePath = "/v1/internal/remove-member"

// incarnationFile names the file under the raft directory that identifies
// the data directory (fsm.Member.Incarnation).
const incarnationFile = "incarnation"

// RemoveRequest asks the leader to remove member ID; By is who asked.
type RemoveRequest struct {
	ID string `json:"id"`
	By string `json:"by,omitempty"`
}

// loadIncarnation reads the data directory's incarnation, making one
// when there is none (a new directory, or one from before incarnations).
func loadIncarnation(raftDir string) (string, error) {
	path := filepath.Join(raftDir, incarnationFile)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("cluster: %w", err)
	}
	return newIncarnation(raftDir)
}

// newIncarnation writes a fresh random incarnation under raftDir.
func newIncarnation(raftDir string) (string, error) {
	var r [16]byte
	rand.Read(r[:])
	inc := hex.EncodeToString(r[:])
	if err := atomicfile.WriteFile(filepath.Join(raftDir, incarnationFile), []byte(inc+"\n")); err != nil {
		return "", fmt.Errorf("cluster: write incarnation: %w", err)
	}
	return inc, nil
}

func (n *Node) joinRequest() JoinRequest {
	return JoinRequest{ID: n.cfg.ID, RaftAddr: string(n.trans.LocalAddr()), HTTPURL: n.cfg.HTTPURL, Events: n.cfg.Events, Incarnation: n.incarnation}
}

// removedError is the leader's refusal of a removed node, as it worded
// it, wrapping fsm.ErrRemoved.
type removedError string

func (e removedError) Error() string { return string(e) }
func (e removedError) Unwrap() error { return fsm.ErrRemoved }

// checkRemoved refuses a node whose data directory an operator removed.
func (n *Node) checkRemoved(id, incarnation string) (err error) {
	n.fsm.Read(func(s *fsm.State) { err = s.CheckRemoved(id, incarnation) })
	return err
}

// RemoveMember removes member id from the cluster: its removal is
// recorded in the replicated state (so that the node cannot come back
// with its old data directory) and it leaves the raft configuration.
// A follower passes the request to the leader. Removing a member already
// removed succeeds again; an unknown id is fsm.ErrNotFound; the last
// voter cannot be removed (fsm.ErrInvalid).
func (n *Node) RemoveMember(ctx context.Context, id, by string) error {
	if id == "" {
		return fmt.Errorf("cluster: %w: remove needs an id", fsm.ErrInvalid)
	}
	body, _ := json.Marshal(RemoveRequest{ID: id, By: by})
	_, err := n.onLeader(ctx, "remove "+id, func() error { return n.removeLocal(id, by) }, RemovePath, body)
	return err
}

// removeLocal is RemoveMember on the leader: the record first, then the
// configuration, so that a removal cut short leaves the node refused and
// a retry finishes it.
func (n *Node) removeLocal(id, by string) error {
	if !n.IsLeader() {
		return ErrNoLeader
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	servers := f.Configuration().Servers
	inConf := false
	for _, s := range servers {
		inConf = inConf || s.ID == raft.ServerID(id)
	}
	var member, removed bool
	n.fsm.Read(func(s *fsm.State) { member, removed = s.Members[id] != nil, s.Removed[id] != nil })
	switch {
	case !inConf && !member && !removed:
		return fmt.Errorf("cluster: %w: no member %s", fsm.ErrNotFound, id)
	case inConf && len(servers) == 1:
		return fmt.Errorf("cluster: %w: %s is the cluster's only member", fsm.ErrInvalid, id)
	}
	if member || !removed {
		cmd := fsm.Command{Op: fsm.OpRemoveMember, ID: id, By: by, At: time.Now().UTC()}
		if err := n.applyLocal(mustEncode(cmd)); err != nil {
			return err
		}
	}
	if inConf {
		if err := n.wait(n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout)); err != nil {
			return fmt.Errorf("cluster: remove %s: %w", id, err)
		}
	}
	n.log.Info("cluster: member removed", "id", id, "by", by)
	return nil
}

// ServeRemove is the leader's end of a removal passed on by a follower
// (POST RemovePath).
func (n *Node) ServeRemove(w http.ResponseWriter, r *http.Request) {
	if !n.peerOK(w, r) {
		return
	}
	var req RemoveRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := n.removeLocal(req.ID, req.By); err != nil {
		writeError(w, StatusOf(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// watchMembership notices a node that was removed while it was away: a
// member that has known no leader for a while asks the members its state
// lists to (re)join it, and the leader refuses a removed data directory
// with fsm.ErrRemoved, which it returns. Other answers are ignored: a
// member in a minority partition merely finds no leader.
func (n *Node) watchMembership(ctx context.Context) error {
	every := max(2*n.cfg.ElectionTimeout, time.Second)
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
		if _, lid := n.raft.LeaderWithID(); lid != "" {
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = time.Now()
			continue
		}
		if time.Since(since) < 3*every {
			continue
		}
		body, _ := json.Marshal(n.joinRequest())
		for _, url := range n.peerURLs() {
			if _, err := n.forward(ctx, url+JoinPath, body); errors.Is(err, fsm.ErrRemoved) {
				return err
			}
		}
	}
}

// peerURLs returns the other members' API URLs as this node knows them:
// its state, and the member records in its log (a node without a leader
// has not applied the entries after its last snapshot). Only
// watchMembership calls it.
func (n *Node) peerURLs() []string {
	if n.logPeers == nil {
		n.logPeers = n.membersInLog()
	}
	seen := map[string]bool{n.cfg.HTTPURL: true}
	var urls []string
	add := func(id, url string) {
		if id != n.cfg.ID && url != "" && !seen[url] {
			seen[url] = true
			urls = append(urls, url)
		}
	}
	n.fsm.Read(func(s *fsm.State) {
		for id, m := range s.Members {
			add(id, m.HTTPURL)
		}
	})
	for id, url := range n.logPeers {
		add(id, url)
	}
	return urls
}

// maxMemberScan bounds how many of the latest log entries membersInLog
// reads.
const maxMemberScan = 1 << 17

// membersInLog reads the members' API URLs from the entries of the raft
// log (the latest maxMemberScan), in log order.
func (n *Node) membersInLog() map[string]string {
	out := map[string]string{}
	first, err1 := n.wal.FirstIndex()
	last, err2 := n.wal.LastIndex()
	if err1 != nil || err2 != nil || last == 0 {
		return out
	}
	if last-first >= maxMemberScan {
		first = last - maxMemberScan + 1
	}
	for i := max(first, 1); i <= last; i++ {
		var l raft.Log
		if n.wal.GetLog(i, &l) != nil || l.Type != raft.LogCommand || !bytes.Contains(l.Data, []byte(`"`+fsm.OpPutMember+`"`)) {
			continue
		}
		var c fsm.Command
		if json.Unmarshal(l.Data, &c) == nil && c.Op == fsm.OpPutMember && c.Member != nil {
			out[c.Member.ID] = c.Member.HTTPURL
		}
	}
	return out
}
