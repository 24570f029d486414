// Package controlplane assembles one control-plane node: the replicated
// state machine and its raft node, the fleet's soft state and steering,
// the fill planner, the ingest job manager, search, events and
// recommendations, and the HTTP API in front of them. New builds the
// parts; Run opens and runs them in the order written in Run, and stops
// them in reverse (docs/design.md §4). cmd/fillcast only parses flags
// into a Config and calls New and Run.
package controlplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/ingest"
	"github.com/fillcast/fillcast/controlplane/planner"
	"github.com/fillcast/fillcast/internal/lifecycle"
	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/transcoder"
	"github.com/fillcast/fillcast/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Config is everything a control-plane node is set up with; the secrets
// it works with come in Deps. Zero values mean the defaults named.
type Config struct {
	// ID names the node in the cluster. Required.
	ID string
	// DataDir holds the raft log, snapshots, uploads and the saved
	// popularity. Required.
	DataDir string
	// HTTP is the API listen address. Required. AdvertiseURL is how
	// other nodes and appliances reach it; zero means http://{HTTP}.
	HTTP, AdvertiseURL string
	// RaftAddr is the raft transport address. Required.
	RaftAddr string
	// Bootstrap starts a new cluster; Join lists nodes of an existing
	// one. Exactly one is required.
	Bootstrap bool
	Join      []string
	// Origin is the origin's base URL: where ingest publishes and the
	// last resort of every playback answer. Empty disables ingest.
	Origin string
	// TrustedProxies are the CIDRs, comma-separated, whose
	// X-Forwarded-For is believed.
	TrustedProxies string
	// Steering tunes tier 2 (epsilon and staleness); its Origin is
	// Config.Origin.
	Steering steering.Config
	// API tunes the HTTP API; its Gateway.TrustedProxies are
	// Config.TrustedProxies.
	API api.Config
	// Ingest tunes the job manager (Workers, Queue).
	Ingest ingest.Config
	// Planner tunes off-peak fill planning. Zero SnapshotPath means
	// DataDir/popularity.json.
	Planner planner.Config
	// Raft timing (tests use short ones); zero means the cluster defaults.
	HeartbeatTimeout, ElectionTimeout time.Duration
	// ShutdownTimeout bounds the wait for requests in flight when Run
	// stops. Zero means 15 s.
	ShutdownTimeout time.Duration
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	for _, f := range []struct{ name, value, what string }{
		{"ID", c.ID, "the node's id, unique in the cluster"},
		{"DataDir", c.DataDir, "the directory of the raft log, snapshots and uploads"},
		{"HTTP", c.HTTP, "the API's listen address"},
		{"RaftAddr", c.RaftAddr, "the raft transport's host:port"},
	} {
		if f.value == "" {
			return fillcast.ConfigErrorf("controlplane", f.name, "required: %s", f.what)
		}
	}
	if c.Bootstrap == (len(c.Join) > 0) {
		return fillcast.ConfigErrorf("controlplane", "Join", "give exactly one of bootstrap (the first node) or the URLs of nodes to join (the others)")
	}
	if c.ShutdownTimeout < 0 {
		return fillcast.ConfigErrorf("controlplane", "ShutdownTimeout", "%v is negative", c.ShutdownTimeout)
	}
	if _, err := gateway.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return fillcast.ConfigErrorf("controlplane", "TrustedProxies", "%v", err)
	}
	c = c.withDefaults()
	if err := c.Steering.Validate(); err != nil {
		return fillcast.ConfigErrorf("controlplane", "Steering", "%v", err)
	}
	if err := c.API.Validate(); err != nil {
		return fillcast.InField("API", err)
	}
	if err := c.Planner.Validate(); err != nil {
		return fillcast.InField("Planner", err)
	}
	return nil
}

// withDefaults fills the zero fields, and the parts' fields that come
// from the node's own.
func (c Config) withDefaults() Config {
	if c.AdvertiseURL == "" {
		c.AdvertiseURL = "http://" + c.HTTP
	}
	c.AdvertiseURL = strings.TrimSuffix(c.AdvertiseURL, "/")
	c.Origin = strings.TrimSuffix(c.Origin, "/")
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.Planner.SnapshotPath == "" {
		c.Planner.SnapshotPath = filepath.Join(c.DataDir, "popularity.json")
	}
	c.Steering.Origin = c.Origin
	c.API.Gateway.TrustedProxies, _ = gateway.ParseTrustedProxies(c.TrustedProxies)
	c.Ingest.Node, c.Ingest.Dir, c.Ingest.OriginURL = c.ID, filepath.Join(c.DataDir, "ingest"), c.Origin
	return c
}

// Deps are what a node works with besides its Config.
type Deps struct {
	// AdminToken guards writes and node-to-node calls. Required.
	AdminToken string
	// Keys sign playback URLs. Required.
	Keys *auth.Keys
	// Log receives the node's log; nil discards it.
	Log *slog.Logger
	// RaftLog receives raft's own log lines; nil discards them.
	RaftLog io.Writer
	// Listener, if set, is where the API is served; nil means Run
	// listens on Config.HTTP. Run closes it.
	Listener net.Listener
}

// Node is one control-plane node: its parts, built by New and run by Run.
type Node struct {
	cfg    Config
	d      Deps
	fsm    *fsm.FSM
	raft   *cluster.Node
	fleet  *fleet.Fleet
	plan   *planner.Planner
	disc   *discovery
	ingest *ingest.Manager // nil without an origin
	api    *api.API
	ln     net.Listener  // the API's, from Deps or opened by Run
	ready  chan struct{} // closed once Run has opened every part
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
	n := &Node{cfg: cfg, d: d, ln: d.Listener, ready: make(chan struct{})}
	// The state machine's change hook feeds the parts that follow the
	// replicated state. They all exist before raft replays the log (in
	// Run), so the hook never sees one half-built.
	n.fsm = fsm.New(n.stateChanged)
	var err error
	if n.raft, err = cluster.New(cluster.Config{
		ID: cfg.ID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, HTTPURL: cfg.AdvertiseURL,
		Bootstrap: cfg.Bootstrap, Join: cfg.Join,
		HeartbeatTimeout: cfg.HeartbeatTimeout, ElectionTimeout: cfg.ElectionTimeout,
	}, cluster.Deps{FSM: n.fsm, AdminToken: d.AdminToken, Log: d.Log, RaftLog: d.RaftLog}); err != nil {
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
		Registry: n.fsm, Steerer: steerer, Observe: n.plan.Observe, Peers: n.peers, AdminToken: d.AdminToken, Log: d.Log,
	}); err != nil {
		return nil, err
	}
	n.disc = newDiscovery(filepath.Join(cfg.DataDir, "events"), n.fsm, d.Log)
	if cfg.Origin != "" {
		tc, err := transcoder.New(transcoder.DefaultConfig())
		if err != nil {
			return nil, err
		}
		if n.ingest, err = ingest.New(cfg.Ingest, ingest.Deps{
			Transcoder: tc, State: stateOf{n.fsm, n.raft}, AdminToken: d.AdminToken, Log: d.Log,
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if n.api, err = api.New(cfg.API, api.Deps{AdminToken: d.AdminToken, Node: n.raft, Fleet: n.fleet, Ingest: n.ingest, Keys: d.Keys,
		Log: d.Log, Registry: reg, Events: n.disc, Search: n.disc, Recs: n.disc, OnPlayback: n.playbackStarted, UI: ui}); err != nil {
		return nil, err
	}
	return n, nil
}

// Run opens the node's parts in the order below, serves the API, and
// when ctx is done (or a part fails) stops them in reverse order: the
// API server first, so requests in flight finish while everything they
// use still runs, and the stores last.
func (n *Node) Run(ctx context.Context) error {
	parts := []lifecycle.Part{
		// Search, events and recommendations: opened before raft
		// replays the catalog into the search index.
		{Name: "discovery", Open: n.disc.open, Run: n.disc.run, Close: n.disc.close},
		// Popularity as saved, before the catalog replays into it.
		{Name: "popularity", Open: func(context.Context) error { n.plan.Restore(); return nil }},
		// Raft: the log replays into the state machine; then joining
		// and announcing this node.
		{Name: "raft", Open: n.raft.Open, Run: n.raft.Run, Close: n.raft.Close},
		{Name: "fleet", Run: n.fleet.Run},
		// Planning, and saving popularity on the way out.
		{Name: "planner", Run: n.plan.Run},
	}
	if n.ingest != nil {
		parts = append(parts, lifecycle.Part{Name: "ingest", Open: n.ingest.Open, Run: n.ingest.Run})
	}
	parts = append(parts,
		// The appliance registrar; closing waits for handlers the
		// gateway abandoned at their timeout.
		lifecycle.Part{Name: "api", Run: n.api.Run, Close: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
			defer cancel()
			return n.api.Close(ctx)
		}},
		lifecycle.Part{Name: "http", Open: n.listen, Run: n.serve},
		lifecycle.Part{Name: "ready", Open: func(context.Context) error { close(n.ready); return nil }},
	)
	defer func() {
		if n.ln != nil {
			n.ln.Close() // also when a part before the server failed
		}
	}()
	return lifecycle.Run(ctx, parts...)
}

// Ready is closed once Run has opened every part and the API listens.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// listen opens the API's listener unless Deps gave one.
func (n *Node) listen(context.Context) error {
	if n.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.HTTP)
	if err != nil {
		return err
	}
	n.ln = ln
	return nil
}

// serve serves the API until ctx is done, then lets the requests in
// flight finish (up to ShutdownTimeout).
func (n *Node) serve(ctx context.Context) error {
	ln := n.ln
	hs := &http.Server{Handler: n.api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	n.d.Log.Info("controlplane: serving", "id", n.cfg.ID, "http", ln.Addr().String(), "raft", n.cfg.RaftAddr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// stateChanged is the state machine's change hook: it tells the parts
// that follow the replicated state. It only marks work, so the raft
// apply loop never waits on them.
func (n *Node) stateChanged(c fsm.Command) {
	n.disc.changed(c)
	n.plan.CatalogChanged(c)
	switch c.Op {
	case fsm.OpPutSite, fsm.OpDeleteSite, fsm.OpPutRule, fsm.OpDeleteRule, fsm.OpPutAppliance, fsm.OpPutManifest, fsm.OpRestore:
		n.fleet.RegistryChanged()
	}
	switch c.Op {
	case fsm.OpPutSite, fsm.OpDeleteSite, fsm.OpPutAppliance:
		n.plan.Kick()
	}
}

// playbackStarted feeds a playback request to the planner's popularity,
// in the region of the client's site.
func (n *Node) playbackStarted(client netip.Addr, title string) {
	if site, ok := n.fleet.Current().Site(client); ok {
		n.plan.ObserveStart(site, title)
	}
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

// Handler returns the API (for tests).
func (n *Node) Handler() http.Handler { return n.api }

// Raft returns the raft node (for tests and status).
func (n *Node) Raft() *cluster.Node { return n.raft }
