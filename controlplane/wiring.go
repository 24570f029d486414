package controlplane

// The node's plumbing: its HTTP server, the state machine's change hook
// and the small adapters between parts.

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/squeeze"
	"github.com/fillcast/fillcast/controlplane/stream"
	"github.com/fillcast/fillcast/internal/httpserve"
)

// listen opens the API's listener unless Deps gave one, and serves TLS
// on it with Config.TLS. It opens before raft, so that a node whose port
// is taken stops before it joins a cluster it could not serve;
// connections wait in the backlog until the server starts, last.
func (n *Node) listen(context.Context) error {
	if n.ln == nil {
		ln, err := net.Listen("tcp", n.cfg.HTTP)
		if err != nil {
			return err // Run names the part and the package
		}
		n.ln = ln
	}
	// A few clients must not hold every connection the node can keep:
	// each address gets MaxConnsPerClient, counted under TLS so that a
	// refused connection costs no handshake.
	n.ln = httpserve.LimitPerClient(n.ln, n.cfg.MaxConnsPerClient, n.cfg.API.Gateway.TrustedProxies...)
	if n.tls.api != nil {
		n.ln = tls.NewListener(n.ln, n.tls.api)
	}
	return nil
}

// closeListener closes the API's listener: the server has closed it
// already unless it never started.
func (n *Node) closeListener() error {
	if err := n.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// serve serves the API until ctx is done, then lets the requests in
// flight finish (up to ShutdownTimeout).
func (n *Node) serve(ctx context.Context) error {
	// The server's own complaints (a refused TLS handshake, a bad
	// request line) go to the node's log at debug, not to stderr.
	hs := &http.Server{Handler: n.api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(n.d.Log.Handler(), slog.LevelDebug)}
	n.d.Log.Info("controlplane: serving", "id", n.cfg.ID, "http", n.ln.Addr().String(), "raft", n.cfg.RaftAddr, "tls", n.tls.api != nil)
	return httpserve.Serve(ctx, hs, n.ln, n.cfg.ShutdownTimeout)
}

// stateChanged is the state machine's change hook: it tells the parts
// that follow the replicated state. It only marks work, so the raft
// apply loop never waits on them.
func (n *Node) stateChanged(c fsm.Command) {
	n.disc.changed(c)
	n.plan.CatalogChanged(c)
	switch c.Op {
	case fsm.OpPutSite, fsm.OpDeleteSite, fsm.OpPutRule, fsm.OpDeleteRule, fsm.OpPutAppliance, fsm.OpPutManifest,
		fsm.OpRegisterAppliance, fsm.OpRevokeAppliance, fsm.OpRestore:
		n.fleet.RegistryChanged()
	}
	switch c.Op {
	case fsm.OpPutSite, fsm.OpDeleteSite, fsm.OpPutAppliance, fsm.OpRevokeAppliance:
		n.plan.Kick()
	}
	switch c.Op {
	case fsm.OpPutMember, fsm.OpRemoveMember, fsm.OpRestore:
		n.stream.MembersChanged()
	case fsm.OpPutRule, fsm.OpDeleteRule:
		n.api.RulesChanged()
	}
	if c.Op == fsm.OpRestore {
		n.api.RulesChanged()
	}
}

// beatStats reads the squeeze tests' appliance stats from the latest
// heartbeats.
type beatStats struct{ f *fleet.Fleet }

func (s beatStats) Appliance(id string) (squeeze.Stats, bool) {
	b, ok := s.f.Beat(id)
	if !ok {
		return squeeze.Stats{}, false
	}
	return squeeze.Stats{P99Millis: b.Beat.P99Millis, ErrorRatio: b.Beat.ErrorRatio, RPS: b.Beat.RPS, Seen: b.Seen}, true
}

// streamMembers lists the members and their event-stream addresses,
// for the stream's routes.
func (n *Node) streamMembers() []stream.Member {
	var out []stream.Member
	n.fsm.Read(func(s *fsm.State) {
		for _, m := range s.Members {
			out = append(out, stream.Member{ID: m.ID, Events: m.Events})
		}
	})
	return out
}

// stateOf joins the FSM's reads and the raft node's writes.
type stateOf struct {
	*fsm.FSM
	node *cluster.Node
}

func (s stateOf) Apply(ctx context.Context, c fsm.Command) error { return s.node.Apply(ctx, c) }

// WaitCaughtUp lets ingest resume jobs only once the log has replayed.
func (s stateOf) WaitCaughtUp(ctx context.Context) error { return s.node.WaitCaughtUp(ctx) }

// peers returns the other members' API URLs.
func (n *Node) peers() []string {
	var out []string
	n.fsm.Read(func(s *fsm.State) {
		for id, m := range s.Members {
			if id != n.cfg.ID {
				out = append(out, m.HTTPURL)
			}
		}
	})
	return out
}
