// Package controlplane assembles one control-plane node: the replicated
// state machine and its raft node, the fleet's soft state and steering,
// the fill planner, the ingest job manager, search, events and
// recommendations, and the HTTP API in front of them. New builds the
// parts; Run opens and runs them in the order written in Run, and stops
// them in reverse (docs/design.md §4). cmd/fillcast only parses flags
// into a Config, loads the secrets into Deps, and calls New and Run.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing/subscriptions"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/ingest"
	"github.com/fillcast/fillcast/controlplane/liststore"
	"github.com/fillcast/fillcast/controlplane/planner"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/controlplane/squeeze"
	"github.com/fillcast/fillcast/controlplane/stream"
	"github.com/fillcast/fillcast/internal/lifecycle"
	"github.com/fillcast/fillcast/internal/tracing"
	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/transcoder"
	"github.com/fillcast/fillcast/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Node is one control-plane node: its parts, built by New and run by Run.
type Node struct {
	cfg    Config
	d      Deps
	fsm    *fsm.FSM
	raft   *cluster.Node
	fleet  *fleet.Fleet
	plan   *planner.Planner
	stream *stream.Stream
	disc   *discovery
	ingest *ingest.Manager  // nil without an origin
	files  *liststore.Store // titles' file lists, for the API
	api    *api.API
	// squeeze runs squeeze tests while the node leads.
	squeeze *squeeze.Runner
	// tracing exports the API's spans (a no-op without an endpoint).
	tracing *tracing.Provider
	// accountsDB is the PostgreSQL accounts store; nil keeps accounts
	// in the replicated state.
	accountsDB *accountsDB
	billing    *billingParts
	tls        *nodeTLS      // the certificates, read by Run
	ln         net.Listener  // the API's, from Deps or opened by Run
	ready      chan struct{} // closed once Run has opened every part
	ran        atomic.Bool
}

// New checks cfg and builds every part of a node. It does no I/O and
// starts nothing: Run does.
func New(cfg Config, d Deps) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.AdminToken == "" || d.Keys == nil {
		return nil, errors.New("controlplane: an admin token and signing keys are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, d: d, ln: d.Listener, tls: newNodeTLS(cfg), ready: make(chan struct{})}
	// The state machine's change hook feeds the parts that follow the
	// replicated state. They all exist before raft replays the log (in
	// Run), so the hook never sees one half-built.
	n.fsm = fsm.New(n.stateChanged)
	var err error
	if n.raft, err = cluster.New(cluster.Config{
		ID: cfg.ID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, HTTPURL: cfg.AdvertiseURL, Events: cfg.eventsAddr(),
		Bootstrap: cfg.Bootstrap, Join: cfg.Join, TLS: cfg.TLS,
		HeartbeatTimeout: cfg.HeartbeatTimeout, ElectionTimeout: cfg.ElectionTimeout,
	}, cluster.Deps{FSM: n.fsm, NodeToken: auth.NodeToken(d.AdminToken), Log: d.Log, RaftLog: d.RaftLog}); err != nil {
		return nil, err
	}
	if n.plan, err = planner.New(cfg.Planner, n.raft, n.fsm, d.Log); err != nil {
		return nil, err
	}
	steerer, err := steering.New(cfg.Steering, nil)
	if err != nil {
		return nil, err
	}
	if n.fleet, err = fleet.New(fleet.Config{NodeID: cfg.ID}, fleet.Deps{
		Registry: n.fsm, Steerer: steerer, Observe: n.plan.Observe, Peers: n.peers, NodeToken: auth.NodeToken(d.AdminToken), Log: d.Log,
		Client: n.tls.peerClient(),
	}); err != nil {
		return nil, err
	}
	if n.stream, err = stream.New(cfg.Events, stream.Deps{Members: n.streamMembers, Secret: auth.RouteSecret(d.AdminToken),
		RouteTLS: n.tls.routeTLS, Log: d.Log}); err != nil {
		return nil, err
	}
	if n.disc, err = newDiscovery(filepath.Join(cfg.DataDir, "events"), n.fsm, n.stream, n.stream.Config().MaxAge, n.plan, cfg.Recs, n.leads, d.Log); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), n.disc.qoe)
	// One set of breaker metrics for the routes' breakers and the
	// dependencies'.
	brMetrics, err := protect.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	br, err := newBreakers(brMetrics, d.Log)
	if err != nil {
		return nil, err
	}
	n.disc.br = br
	if cfg.Origin != "" {
		tc, err := transcoder.New(transcoder.DefaultConfig())
		if err != nil {
			return nil, err
		}
		if n.ingest, err = ingest.New(cfg.Ingest, ingest.Deps{
			Transcoder: tc, State: stateOf{n.fsm, n.raft}, AdminToken: d.AdminToken, Log: d.Log,
			Client: n.tls.originClient(), TranscoderBreaker: br.transcoder, OriginBreaker: br.origin, Retries: br.originRetries,
			Leader: n.leads,
		}); err != nil {
			return nil, err
		}
	}
	ui, err := web.New()
	if err != nil {
		return nil, err
	}
	if missing := ui.Missing(); len(missing) > 0 {
		d.Log.Warn("controlplane: web pages built without the player library; DASH and MSE playback are off (make build bundles it)", "missing", missing)
	}
	store, db := n.accountsStore()
	n.accountsDB = db
	am, err := accounts.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	viewers, err := accounts.NewService(cfg.Accounts, accounts.Deps{Store: guardedStore{store, br.accounts}, Log: d.Log, Metrics: am})
	if err != nil {
		return nil, err
	}
	if n.billing, err = n.newBilling(viewers, reg, d.Log); err != nil {
		return nil, err
	}
	if n.squeeze, err = squeeze.New(cfg.Squeeze, squeeze.Deps{Store: stateOf{n.fsm, n.raft}, Stats: beatStats{n.fleet}, Leader: n.leads, Log: d.Log}); err != nil {
		return nil, err
	}
	if n.tracing, err = tracing.New(cfg.Tracing); err != nil {
		return nil, err
	}
	if err := n.registerMetrics(reg); err != nil {
		return nil, err
	}
	if n.files, err = liststore.New(liststore.Config{Origin: cfg.Origin}, liststore.Deps{State: n.fsm, AdminToken: d.AdminToken,
		Client: n.tls.originClient(), Breaker: br.origin}); err != nil {
		return nil, err
	}
	if n.api, err = api.New(cfg.API, api.Deps{AdminToken: d.AdminToken, Node: n.raft, Fleet: n.fleet, Accounts: viewers, Ingest: n.ingest, Keys: d.Keys, FileLists: n.files,
		Log: d.Log, Registry: reg, Breakers: brMetrics, Events: n.disc, Search: n.disc, Recs: n.disc, UI: ui,
		Squeeze: n.squeeze, Billing: n.billing.svc, Tracer: n.tracing.Tracer("github.com/fillcast/fillcast/controlplane")}); err != nil {
		return nil, err
	}
	return n, nil
}

// Run opens the node's parts in the order below, serves the API, and
// when ctx is done (or a part fails) stops them in reverse order: the
// API server first, so requests in flight finish while everything they
// use still runs, and the stores last. A Node runs once.
func (n *Node) Run(ctx context.Context) error {
	if !n.ran.CompareAndSwap(false, true) {
		return errors.New("controlplane: a Node runs once")
	}
	parts := []lifecycle.Part{
		// The certificates, read first: a node with a wrong one stops
		// before it listens.
		{Name: "tls", Open: n.tls.open, Close: n.tls.close},
		// The API's port, taken first: a node that cannot serve stops
		// before it joins a cluster.
		{Name: "listener", Open: n.listen, Close: n.closeListener},
		// Search, events and recommendations: opened before raft
		// replays the catalog into the search index.
		{Name: "discovery", Open: n.disc.open, Run: n.disc.run, Close: n.disc.close},
		// Popularity as saved, before the catalog replays into it.
		{Name: "popularity", Open: func(context.Context) error { n.plan.Restore(); return nil }},
		// Raft: the log replays into the state machine; then joining
		// and announcing this node.
		{Name: "raft", Open: n.raft.Open, Run: n.raft.Run, Close: n.raft.Close},
		// The event stream: its server starts once raft has replayed
		// the membership it routes to; its consumers feed discovery and
		// popularity, opened above.
		{Name: "events", Run: n.stream.Run},
		{Name: "fleet", Run: n.fleet.Run},
		// Planning, and saving popularity on the way out.
		{Name: "planner", Run: n.plan.Run},
		// Squeeze tests, advanced by the leader.
		{Name: "squeeze", Run: n.squeeze.Run},
		// The span exporter, flushed last.
		{Name: "tracing", Close: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return n.tracing.Shutdown(ctx)
		}},
	}
	if n.ingest != nil {
		parts = append(parts, lifecycle.Part{Name: "ingest", Open: n.ingest.Open, Run: n.ingest.Run})
	}
	if n.accountsDB != nil {
		// PostgreSQL, connected and migrated before the API serves.
		parts = append(parts, lifecycle.Part{Name: "accounts", Open: n.accountsDB.open, Close: n.accountsDB.close})
	}
	// Billing: the payment provider's records, billing's PostgreSQL
	// tables, and the leader's hourly renewal pass.
	parts = append(parts, lifecycle.Part{Name: "billing", Open: n.billing.open, Run: n.billing.run, Close: n.billing.close})
	parts = append(parts,
		// The cache of titles' file lists the API reads.
		lifecycle.Part{Name: "liststore", Open: n.files.Open, Close: n.files.Close},
		// The appliance registrar; closing waits for handlers the
		// gateway abandoned at their timeout.
		lifecycle.Part{Name: "api", Run: n.api.Run, Close: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
			defer cancel()
			return n.api.Close(ctx)
		}},
		lifecycle.Part{Name: "http", Run: n.serve},
		lifecycle.Part{Name: "ready", Open: func(context.Context) error { close(n.ready); return nil }},
	)
	if err := lifecycle.Run(ctx, parts...); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	return nil
}

// leads reports whether this node leads raft: false until every part
// is open (discovery runs before raft opens).
func (n *Node) leads() bool {
	select {
	case <-n.ready:
		return n.raft.IsLeader()
	default:
		return false
	}
}

// Ready is closed once Run has opened every part and the API listens.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Handler returns the API, for tests that call it without the network:
// only once Ready is closed, as the parts it serves are opened by Run.
func (n *Node) Handler() http.Handler { return n.api }

// Raft returns the raft node (for tests and status).
func (n *Node) Raft() *cluster.Node { return n.raft }

// Stream returns the node's event stream (for benchmarks and tests).
func (n *Node) Stream() *stream.Stream { return n.stream }

// Billing returns the node's billing service (for benchmarks and tests).
func (n *Node) Billing() *subscriptions.Service { return n.billing.svc }
