// Package controlplane assembles one control-plane node: the replicated
// state machine and its raft node, the fleet's soft state and steering,
// the ingest job manager, and the HTTP API in front of them.
// cmd/fillcast only parses flags into a Config and calls Serve.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/ingest"
	"github.com/fillcast/fillcast/controlplane/planner"
	"github.com/fillcast/fillcast/steering"
	"github.com/fillcast/fillcast/transcoder"
	"github.com/fillcast/fillcast/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Config is everything a control-plane node needs.
type Config struct {
	ID      string
	DataDir string
	// HTTP is the API listen address; AdvertiseURL is how other nodes and
	// appliances reach it (default http://{HTTP}).
	HTTP, AdvertiseURL string
	// RaftAddr is the raft transport address.
	RaftAddr string
	// Bootstrap starts a new cluster; Join lists nodes of an existing one.
	Bootstrap bool
	Join      []string
	// AdminToken guards writes and node-to-node calls. Required.
	AdminToken string
	// Keys sign playback URLs. Required.
	Keys *auth.Keys
	// Origin is the origin's base URL: where ingest publishes and the
	// last resort of every playback answer. Empty disables ingest.
	Origin string
	// TrustedProxies may set X-Forwarded-For.
	TrustedProxies string
	// Steering tunes tier 2 (epsilon and staleness).
	Steering steering.Config
	// API tunes the HTTP API.
	API api.Config
	// Ingest tunes the job manager (Workers, Queue).
	Ingest ingest.Config
	// Planner tunes off-peak fill planning. Popularity is saved under
	// DataDir unless Planner.SnapshotPath says where.
	Planner planner.Config
	// Raft timing (tests use short ones); zero means the cluster defaults.
	HeartbeatTimeout, ElectionTimeout time.Duration
	// RaftLog receives raft's own log lines; nil discards them.
	RaftLog io.Writer
	// ShutdownTimeout bounds the graceful stop. Zero means 15 s.
	ShutdownTimeout time.Duration
}

// Validate fills defaults and reports the first problem.
func (c *Config) Validate() error {
	if c.ID == "" || c.DataDir == "" || c.HTTP == "" || c.RaftAddr == "" {
		return errors.New("controlplane: --id, --data, --http and --raft are required")
	}
	if c.Bootstrap == (len(c.Join) > 0) {
		return errors.New("controlplane: give exactly one of --bootstrap (first node) or --join URL (the others)")
	}
	if c.AdminToken == "" {
		return errors.New("controlplane: --admin-token is required")
	}
	if c.Keys == nil {
		return errors.New("controlplane: --token-keys is required")
	}
	if c.AdvertiseURL == "" {
		c.AdvertiseURL = "http://" + c.HTTP
	}
	c.AdvertiseURL = strings.TrimSuffix(c.AdvertiseURL, "/")
	c.Origin = strings.TrimSuffix(c.Origin, "/")
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.Planner.SnapshotPath == "" {
		c.Planner.SnapshotPath = filepath.Join(c.DataDir, "popularity.json")
	}
	c.Steering.Origin = c.Origin
	if err := c.Steering.Validate(); err != nil {
		return err
	}
	proxies, err := gateway.ParseTrustedProxies(c.TrustedProxies)
	if err != nil {
		return fmt.Errorf("controlplane: --trusted-proxies: %w", err)
	}
	c.API.Gateway.TrustedProxies = proxies
	c.API.AdminToken = c.AdminToken
	return c.API.Validate()
}

// Node is a running control-plane node.
type Node struct {
	cfg    Config
	log    *slog.Logger
	fsm    *fsm.FSM
	raft   *cluster.Node
	fleet  *fleet.Fleet
	ingest *ingest.Manager
	disc   *discovery
	plan   *planner.Planner
	api    *api.API
	once   sync.Once
}

// New opens the raft state under cfg.DataDir and builds every part.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log}
	// The state machine's change hook feeds the fleet (steering) and the
	// search index. Both exist before raft starts replaying the log, so
	// the hook never sees them half-built.
	n.fsm = fsm.New(func(c fsm.Command) {
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
	})
	steerer, err := steering.New(cfg.Steering, nil)
	if err != nil {
		return nil, err
	}
	// The raft node comes later; the planner reaches it through the Node.
	if n.plan, err = planner.New(cfg.Planner, nodeRef{n}, n.fsm, log); err != nil {
		return nil, err
	}
	if n.fleet, err = fleet.New(fleet.Config{NodeID: cfg.ID, AdminToken: cfg.AdminToken, Peers: n.peers}, n.fsm, steerer, n.plan.Observe, log); err != nil {
		return nil, err
	}
	if n.disc, err = openDiscovery(cfg.DataDir, n.fsm, log); err != nil {
		n.Close()
		return nil, err
	}
	n.raft, err = cluster.New(cluster.Config{
		ID: cfg.ID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, HTTPURL: cfg.AdvertiseURL,
		Bootstrap: cfg.Bootstrap, AdminToken: cfg.AdminToken, RaftLog: cfg.RaftLog,
		HeartbeatTimeout: cfg.HeartbeatTimeout, ElectionTimeout: cfg.ElectionTimeout,
	}, n.fsm, log)
	if err != nil {
		n.Close()
		return nil, err
	}
	if cfg.Origin != "" {
		tc, err := transcoder.New(transcoder.DefaultConfig())
		if err == nil {
			icfg := cfg.Ingest
			icfg.Node, icfg.Dir, icfg.OriginURL, icfg.AdminToken = cfg.ID, filepath.Join(cfg.DataDir, "ingest"), cfg.Origin, cfg.AdminToken
			n.ingest, err = ingest.New(icfg, tc, stateOf{n.fsm, n.raft}, log)
		}
		if err != nil {
			n.Close()
			return nil, err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ui, err := web.New()
	if err != nil {
		n.Close()
		return nil, err
	}
	if missing := ui.Missing(); len(missing) > 0 {
		log.Warn("controlplane: web pages built without the player library; DASH and MSE playback are off (make build bundles it)", "missing", missing)
	}
	n.api, err = api.New(cfg.API, api.Deps{Node: n.raft, Fleet: n.fleet, Ingest: n.ingest, Keys: cfg.Keys, Log: log, Registry: reg,
		Events: n.disc.events, Search: n.disc.index, Recs: n.disc.recs, OnPlayback: n.playbackStarted, UI: ui})
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// playbackStarted feeds a playback request to the planner's popularity,
// in the region of the client's site.
func (n *Node) playbackStarted(client netip.Addr, title string) {
	if site, ok := n.fleet.Current().Site(client); ok {
		n.plan.ObserveStart(site, title)
	}
}

// nodeRef gives the planner the raft node once it exists; the planner
// only runs (and so only calls it) after New returns.
type nodeRef struct{ n *Node }

func (r nodeRef) IsLeader() bool { return r.n.raft.IsLeader() }
func (r nodeRef) Apply(ctx context.Context, c fsm.Command) error {
	return r.n.raft.Apply(ctx, c)
}

// stateOf joins the FSM's reads and the raft node's writes.
type stateOf struct {
	*fsm.FSM
	node *cluster.Node
}

func (s stateOf) Apply(ctx context.Context, c fsm.Command) error { return s.node.Apply(ctx, c) }

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

// Serve serves the API on ln until ctx is done: it joins the cluster if
// asked, resumes this node's interrupted ingest jobs once writes work,
// then shuts down gracefully.
func (n *Node) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: n.api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	n.log.Info("controlplane: serving", "id", n.cfg.ID, "http", ln.Addr().String(), "raft", n.cfg.RaftAddr)

	var bg sync.WaitGroup
	bctx, stopBG := context.WithCancel(ctx)
	bg.Add(2)
	go func() {
		defer bg.Done()
		n.plan.Run(bctx)
	}()
	go func() {
		defer bg.Done()
		if len(n.cfg.Join) > 0 {
			if err := n.raft.Join(bctx, n.cfg.Join); err != nil {
				n.log.Error("controlplane: join failed", "err", err)
				return
			}
		}
		if n.ingest != nil {
			if err := n.raft.WaitCaughtUp(bctx); err != nil {
				return
			}
			n.ingest.Resume(bctx)
		}
	}()

	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		err = hs.Shutdown(sctx)
		cancel()
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	stopBG()
	bg.Wait()
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops every part; safe to call twice.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		if n.api != nil {
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
			n.api.Close(ctx)
			cancel()
		}
		if n.ingest != nil {
			n.ingest.Close()
		}
		if n.raft != nil {
			err = n.raft.Close()
		}
		if n.fleet != nil {
			n.fleet.Close()
		}
		if n.disc != nil {
			n.disc.close()
		}
	})
	return err
}
