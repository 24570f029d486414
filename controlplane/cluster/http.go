package cluster

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/auth/pki"
	"github.com/fillcast/fillcast/controlplane/fsm"
)

// maxCommandBytes bounds a forwarded command: a title with thousands of
// files fits comfortably.
const maxCommandBytes = 32 << 20

// ServeApply is the leader's end of a forwarded write (POST ApplyPath,
// admin token required, and with Config.TLS a node's certificate).
func (n *Node) ServeApply(w http.ResponseWriter, r *http.Request) {
	if !n.peerOK(w, r) {
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCommandBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	index, err := n.ApplyLocal(b)
	if err != nil {
		writeError(w, StatusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(applied{Index: index})
}

// ServeReadIndex answers the leader's read index (POST ReadIndexPath,
// admin token required, and with Config.TLS a node's certificate) to a
// node making a linearizable read (CatchUp): the commit index, confirmed
// by a majority, that every write committed before the question is at or
// below. Questions arriving together share a round. A follower, or a
// leader that cannot confirm it still leads, answers 503.
func (n *Node) ServeReadIndex(w http.ResponseWriter, r *http.Request) {
	if !n.peerOK(w, r) {
		return
	}
	if !n.IsLeader() {
		writeError(w, http.StatusServiceUnavailable, ErrNoLeader)
		return
	}
	index, err := n.reads.get(r.Context(), n.leaderReadIndex)
	if err != nil {
		writeError(w, StatusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(applied{Index: index})
}

// ServeJoin adds the node described in the body (POST JoinPath, admin
// token required, and with Config.TLS a node's certificate); a follower
// passes it on to the leader.
func (n *Node) ServeJoin(w http.ResponseWriter, r *http.Request) {
	if !n.peerOK(w, r) {
		return
	}
	var req JoinRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := n.ForwardJoin(r.Context(), req); err != nil {
		writeError(w, StatusOf(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// peerOK answers 401 to a caller without the node token and, when the
// cluster runs TLS, 403 to one whose connection did not present a node
// certificate from the cluster CA: under mutual TLS, only nodes join
// and forward writes, whatever token they hold.
func (n *Node) peerOK(w http.ResponseWriter, r *http.Request) bool {
	if !auth.BearerOK(r.Header.Get("Authorization"), n.d.NodeToken) {
		writeError(w, http.StatusUnauthorized, errors.New("cluster: the node token required"))
		return false
	}
	if n.cfg.TLS.IsZero() {
		return true
	}
	if role, _, ok := pki.PeerIdentity(r.TLS); !ok || role != pki.RoleNode {
		n.log.Warn("cluster: refused a node-to-node call without a node certificate", "path", r.URL.Path, "remote", r.RemoteAddr, "role", role)
		writeError(w, http.StatusForbidden, errors.New("forbidden"))
		return false
	}
	return true
}

// StatusOf maps the package's errors to HTTP statuses.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, fsm.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrDuplicate):
		return http.StatusConflict
	case errors.Is(err, fsm.ErrExists), errors.Is(err, fsm.ErrLimit), errors.Is(err, fillcast.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, fsm.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, fsm.ErrRemoved):
		return http.StatusGone
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrStale):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Kinds of a forwarded write's failure, in the "kind" of the error body:
// the node that forwarded it returns the same error, whatever a proxy or
// a route of the same status would have meant.
const (
	kindExists   = "exists"
	kindNotFound = "not_found"
	kindLimit    = "limit"
	kindConflict = "conflict"
	kindRemoved  = "removed"
)

func writeError(w http.ResponseWriter, code int, err error) {
	body := map[string]string{"error": err.Error()}
	switch {
	case errors.Is(err, fsm.ErrExists):
		body["kind"] = kindExists
	case errors.Is(err, fsm.ErrNotFound):
		body["kind"] = kindNotFound
	case errors.Is(err, fsm.ErrLimit):
		body["kind"] = kindLimit
	case errors.Is(err, fillcast.ErrConflict):
		body["kind"] = kindConflict
	case errors.Is(err, fsm.ErrRemoved):
		body["kind"] = kindRemoved
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}
