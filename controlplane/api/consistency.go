package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// Read consistency (docs/api.md, "Read consistency"): the reads that must
// be current make this node's state reflect every write committed before
// the request (a linearizable read, through the leader's read index) or
// answer 503; every other read answers from this node's copy at once and
// says, in StaleHeader, when that copy may be behind.

// consistency is what reads need of the raft node (*cluster.Node).
type consistency interface {
	// CatchUp waits until this node's state reflects every write
	// committed before the call, or fails (cluster.ErrNoLeader,
	// cluster.ErrStale).
	CatchUp(ctx context.Context) error
	// Staleness is how far behind the cluster this node's state may be:
	// zero while it is in touch with a leader.
	Staleness() time.Duration
}

var _ consistency = (*cluster.Node)(nil)

// StaleHeader is set on an answer read from this node's own copy of the
// state when the node has not heard from a leader for longer than the
// heartbeat timeout: the seconds since it last did (one decimal), so the
// answer may miss writes of that long.
const StaleHeader = "X-Fillcast-Stale-Seconds"

// linearizable names the GET routes whose handlers read through current:
// they carry no StaleHeader, since they answer only when current.
var linearizable = map[string]bool{
	"get_title":     true,
	"get_keys":      true,
	"list_api_keys": true,
	"get_account":   true,
}

// current makes this node's state reflect every write committed before
// the request, or returns a 503 that says so: a node without a leader,
// or cut off from it, never answers a read that must be current.
func (a *API) current(ctx context.Context) error {
	if err := a.d.Node.CatchUp(ctx); err != nil {
		return staleError(err)
	}
	return nil
}

// staleError is the 503 of a read that must be current on a node that
// cannot show it is.
func staleError(err error) *gateway.Error {
	return &gateway.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second, Err: err,
		Message: "this node cannot confirm its state is current (no leader, or cut off from it): try again shortly, or through another node"}
}

// reportStale returns rt's handler, which for a GET route that may answer
// stale sets StaleHeader when this node's state may be behind. The
// cluster's own routes (critical or node-only) are left as they are.
func (a *API) reportStale(rt route) gateway.HandlerFunc {
	if !strings.HasPrefix(rt.pattern, "GET ") || linearizable[rt.opts.Name] || rt.opts.Priority == gateway.PriorityCritical || rt.opts.Policy.NodesOnly {
		return rt.h
	}
	h := rt.h
	return func(w http.ResponseWriter, r *http.Request) error {
		if s := a.d.Node.Staleness(); s > 0 {
			w.Header().Set(StaleHeader, strconv.FormatFloat(s.Seconds(), 'f', 1, 64))
		}
		return h(w, r)
	}
}
