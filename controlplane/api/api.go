// Package api is the control plane's HTTP API (docs/design.md §6.2): playback
// and content steering for players, the catalog, ingest jobs, sites,
// rules, the fleet and heartbeats for operators and appliances, and the
// cluster endpoints, all registered on the gateway's filter chain so that
// every route gets request ids, access logs, metrics and its own timeout,
// bulkhead and breaker. Reads are answered from this node's replicated
// state; writes go through the raft node, which forwards them to the
// leader.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/billing/subscriptions"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/cluster"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
	"github.com/fillcast/fillcast/controlplane/ingest"
	"github.com/fillcast/fillcast/controlplane/liststore"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/controlplane/ratelimit"
	"github.com/fillcast/fillcast/controlplane/rules"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Node is what the API needs of the raft node.
type Node interface {
	Apply(ctx context.Context, cmd fsm.Command) error
	FSM() *fsm.FSM
	Status() fillcast.ClusterStatus
	ServeApply(w http.ResponseWriter, r *http.Request)
	ServeJoin(w http.ResponseWriter, r *http.Request)
	ServeReadIndex(w http.ResponseWriter, r *http.Request)
	clusterOps
	consistency
}

// Config configures the API. Zero values mean the defaults named.
type Config struct {
	// Gateway configures the filter chain (trusted proxies, shedding).
	Gateway gateway.Config
	// TokenTTL is how long playback URLs stay valid (rounded up to the
	// minute, so that one signed token serves a client network for a
	// minute). Zero means 6 h; at most 23 h 59 min, since appliances
	// refuse tokens that expire more than 24 h ahead.
	TokenTTL time.Duration
	// UnboundTokens turns client binding off: playback tokens then verify
	// for any client, not only for the /24 (IPv4) or /48 (IPv6) of the
	// one they were issued to. Zero (false) binds them.
	UnboundTokens bool
	// SteeringTTL is the content steering reload interval. Zero means 10 s.
	SteeringTTL time.Duration
	// MaxUploadBytes bounds an ingest upload. Zero means 16 GiB.
	MaxUploadBytes int64
	// WriteTimeout bounds a replicated write. Zero means 10 s.
	WriteTimeout time.Duration
	// FillPassTTL is how long a fill pass stays valid: how long a revoked
	// appliance may still fill from its peers and the origin. Zero means
	// 1 h; at most 23 h 59 min, like tokens.
	FillPassTTL time.Duration
	// EventsPerSecond and EventBurst limit the viewing events one account
	// may post: a token bucket. Zero means 20 a second with a burst of
	// 2,000 (two full batches).
	EventsPerSecond float64
	EventBurst      int
	// RateLimits are the request limits per principal by class (the
	// defaults of ratelimit.DefaultConfig); limit rules add to them at
	// runtime.
	RateLimits ratelimit.Config
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.TokenTTL < 0:
		return fillcast.ConfigErrorf("api", "TokenTTL", "%v is negative", c.TokenTTL)
	case c.TokenTTL > auth.DefaultMaxLifetime-tokenBucket:
		return fillcast.ConfigErrorf("api", "TokenTTL", "%v: at most %v, or appliances refuse the tokens", c.TokenTTL, auth.DefaultMaxLifetime-tokenBucket)
	case c.SteeringTTL < 0:
		return fillcast.ConfigErrorf("api", "SteeringTTL", "%v is negative", c.SteeringTTL)
	case c.MaxUploadBytes < 0:
		return fillcast.ConfigErrorf("api", "MaxUploadBytes", "%d is negative", c.MaxUploadBytes)
	case c.WriteTimeout < 0:
		return fillcast.ConfigErrorf("api", "WriteTimeout", "%v is negative", c.WriteTimeout)
	case c.EventsPerSecond < 0 || c.EventBurst < 0:
		return fillcast.ConfigErrorf("api", "EventsPerSecond", "%v a second, burst %d: want positive values", c.EventsPerSecond, c.EventBurst)
	case c.FillPassTTL < 0 || c.FillPassTTL > auth.DefaultMaxLifetime-time.Minute:
		return fillcast.ConfigErrorf("api", "FillPassTTL", "%v: want up to %v", c.FillPassTTL, auth.DefaultMaxLifetime-time.Minute)
	}
	if err := c.Gateway.Validate(); err != nil {
		return fillcast.InField("Gateway", err)
	}
	if err := c.RateLimits.Validate(); err != nil {
		return fillcast.InField("RateLimits", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.TokenTTL == 0 {
		c.TokenTTL = 6 * time.Hour
	}
	if c.SteeringTTL == 0 {
		c.SteeringTTL = 10 * time.Second
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = 16 << 30
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.FillPassTTL == 0 {
		c.FillPassTTL = time.Hour
	}
	if c.EventsPerSecond == 0 {
		c.EventsPerSecond = 20
	}
	if c.EventBurst == 0 {
		c.EventBurst = 2000
	}
	return c
}

// Deps are the parts the API serves.
type Deps struct {
	// AdminToken is the bootstrap admin key: an operator with the admin
	// scope; nodes without TLS call each other with auth.NodeToken of it.
	AdminToken string
	// Node is the raft node: writes, state and the cluster's routes.
	// Required.
	Node Node
	// Fleet is the steering fleet and heartbeat soft state. Required.
	Fleet *fleet.Fleet
	// Accounts are the viewers: accounts, sessions, plans and stream
	// leases. Required.
	Accounts *accounts.Service
	// Ingest runs uploads; nil turns the ingest route off.
	Ingest *ingest.Manager
	// Keys sign playback URLs (the replicated keys are merged over
	// them). Required.
	Keys *auth.Keys
	// Log receives the access log and errors. Required.
	Log *slog.Logger
	// Registry gets the API's metrics and serves /metrics; nil means a
	// registry of its own.
	Registry *prometheus.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Events, Search and Recs, when set, add the viewer-facing routes.
	Events Events
	Search Search
	Recs   Recs
	// UI, when set, serves the web pages at "/" and their assets under
	// "/ui/".
	UI http.Handler
	// Breakers are the circuit breakers' metrics, shared with the node's
	// dependency breakers; nil means the gateway registers its own.
	Breakers *protect.Metrics
	// Squeeze, when set, adds the squeeze-test routes.
	Squeeze Squeeze
	// Billing, when set, adds the subscriptions', invoices' and billing
	// routes, starts new accounts' trials, and makes playback answer 402
	// to an account its subscription does not entitle.
	Billing *subscriptions.Service
	// Tracer, when set, records a span of every request (otel); without
	// it requests still carry a W3C trace context.
	Tracer trace.Tracer
	// FileLists finds titles' file lists (a *liststore.Store over the
	// origin); nil means a store of the lists still pending in the
	// replicated state alone.
	FileLists FileLists
}

// API is the control plane's http.Handler.
type API struct {
	cfg Config
	d   Deps
	gw  *gateway.Gateway
	reg *registrar
	// nodeToken is what nodes without certificates call each other with.
	nodeToken string
	// keyCache holds the parsed replicated signing keys.
	keyCache atomic.Pointer[keyCache]
	// eventLimit limits each account's viewing events.
	eventLimit *ratelimit.Table
	// lastGood keeps recent search answers for the search fallback.
	lastGood *lastGood
	// fallbacks counts the fallbacks' answers.
	fallbacks fallbackCounter
	// rules are the replicated runtime rules, compiled (RulesChanged);
	// routeTable is what they may name.
	rules      atomic.Pointer[rules.Set]
	routeTable rules.RouteTable
	// limits are the per-principal request limits, asked on every route
	// but the unlimited ones (the rules' and squeeze tests').
	limits    *ratelimit.Limiter
	unlimited map[string]bool
	// catalogs keeps the fill manifests' catalog (manifest.go).
	catalogs atomic.Pointer[catalogAt]
}

// New builds the gateway and registers every route; Run runs the
// background work behind them.
func New(cfg Config, d Deps) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if d.Keys != nil && !d.Keys.CanSign() {
		return nil, errors.New("api: the key file holds public keys only: the control plane signs playback URLs and credentials, give it the private key file")
	}
	if d.Node == nil || d.Fleet == nil || d.Keys == nil || d.Log == nil || d.Accounts == nil {
		return nil, errors.New("api: node, fleet, accounts, keys and logger are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.FileLists == nil {
		pending, err := liststore.New(liststore.Config{}, liststore.Deps{State: d.Node.FSM()})
		if err != nil {
			return nil, err
		}
		d.FileLists = pending
	}
	a := &API{cfg: cfg, d: d, nodeToken: auth.NodeToken(d.AdminToken), eventLimit: ratelimit.NewTable(ratelimit.Limit{PerSecond: cfg.EventsPerSecond, Burst: cfg.EventBurst}, 0),
		lastGood: newLastGood(lastGoodEntries)}
	var err error
	if a.fallbacks, err = newFallbackCounter(d.Registry); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if a.limits, err = ratelimit.New(cfg.RateLimits, d.Registry); err != nil {
		return nil, err
	}
	gw, err := gateway.New(cfg.Gateway, gateway.Deps{Authenticator: authenticator{api: a}, Logger: d.Log, Registerer: d.Registry, Now: d.Now,
		RateLimiter: a, Statics: a, Tracer: d.Tracer, Breakers: d.Breakers})
	if err != nil {
		return nil, err
	}
	a.gw = gw
	a.reg = newRegistrar(d.Node, d.Log)
	if err := a.routes(); err != nil {
		return nil, err
	}
	a.RulesChanged()
	return a, nil
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.gw.ServeHTTP(w, r) }

// Run registers appliances that heartbeats show new or changed, until
// ctx is done.
func (a *API) Run(ctx context.Context) error {
	a.reg.run(ctx)
	return nil
}

// Close waits for the handlers the gateway abandoned at their timeout,
// until ctx is done: after the server has stopped and Run has returned.
func (a *API) Close(ctx context.Context) error {
	return a.gw.Close(ctx)
}

// Who may call what (docs/api.md has the table; policies_test.go proves
// it). Operators' scopes: operator changes the catalog, sites, rules and
// plans; ingest uploads; read reads the fleet, the cluster, jobs and
// metrics; admin does everything, including keys and credentials.
var (
	opScope       = auth.Policy{Scopes: auth.ScopeOperator}
	ingestScope   = auth.Policy{Scopes: auth.ScopeOperator | auth.ScopeIngest}
	jobsReader    = auth.Policy{Scopes: auth.ScopeOperator | auth.ScopeIngest | auth.ScopeRead}
	opsReader     = auth.Policy{Scopes: auth.ScopeOperator | auth.ScopeRead}
	nodeOnly      = auth.Policy{NodesOnly: true}
	applianceSelf = auth.Policy{Appliance: auth.ApplianceSelf}
	// The member list is how clients (appliances included) find nodes.
	clusterReader = auth.Policy{Appliance: auth.AnyAppliance, Node: true, Scopes: auth.ScopeOperator | auth.ScopeRead}
	ownManifest   = auth.Policy{Appliance: auth.ApplianceSelf, Scopes: auth.ScopeOperator | auth.ScopeRead}
	// Titles' file lists: what appliances fill, what nodes and tools
	// check.
	listReader = auth.Policy{Appliance: auth.AnyAppliance, Node: true, Scopes: auth.ScopeOperator | auth.ScopeIngest | auth.ScopeRead}
)

// Route priorities: players first, operators next, bulk reads last.
func (a *API) routes() error {
	write := func(name string, p auth.Policy) gateway.RouteOptions {
		return gateway.RouteOptions{Name: name, Policy: p, Timeout: a.cfg.WriteTimeout + time.Second, Priority: gateway.PriorityBrowse}
	}
	read := func(name string, p auth.Policy) gateway.RouteOptions {
		return gateway.RouteOptions{Name: name, Policy: p, Timeout: 5 * time.Second, Streaming: true, Priority: gateway.PriorityBrowse}
	}
	routes := []route{
		// Playback and steering do no I/O (local state, a lock-free
		// steering snapshot): a timeout would only cost a timer each.
		// Playback's one possible wait, a stream lease's write, is bounded
		// by the accounts store; a route timeout would cost a timer on
		// every answer.
		{"GET /v1/playback/{title}", gateway.RouteOptions{Name: "playback", Policy: viewerOnly, Streaming: true, Priority: gateway.PriorityPlayback}, a.playback},
		{"GET /v1/steering/{title}", gateway.RouteOptions{Name: "steering", Policy: auth.Public, Streaming: true, Priority: gateway.PriorityPlayback}, a.steering},
		{"GET /v1/titles", read("list_titles", browser), a.listTitles},
		{"POST /v1/titles", write("create_title", opScope), a.createTitle},
		{"GET /v1/titles/{id}", read("get_title", browser), a.getTitle},
		{"PUT /v1/titles/{id}", write("put_title", opScope), a.putTitle},
		{"DELETE /v1/titles/{id}", write("delete_title", opScope), a.deleteTitle},
		{"GET /v1/titles/{id}/files/{path...}", gateway.RouteOptions{Name: "title_file", Policy: browser, Streaming: true, Priority: gateway.PriorityBrowse}, a.titleFile},
		// A list may come from the origin, and be tens of MiB.
		{"GET /v1/titles/{id}/filelist/{digest}", gateway.RouteOptions{Name: "title_filelist", Policy: listReader, Streaming: true, Timeout: 30 * time.Second, Priority: gateway.PriorityBrowse}, a.titleFileList},
		{"POST /v1/titles/{id}/ingest", gateway.RouteOptions{Name: "ingest", Policy: ingestScope, Streaming: true, Timeout: time.Hour, MaxBodyBytes: a.cfg.MaxUploadBytes, MaxConcurrent: 4}, a.ingest},
		{"GET /v1/jobs", read("list_jobs", jobsReader), a.listJobs},
		{"GET /v1/jobs/{id}", read("get_job", jobsReader), a.getJob},
		{"GET /v1/sites", read("list_sites", opsReader), a.listSites},
		{"GET /v1/sites/{id}", read("get_site", opsReader), a.getSite},
		{"PUT /v1/sites/{id}", write("put_site", opScope), a.putSite},
		{"DELETE /v1/sites/{id}", write("delete_site", opScope), a.deleteSite},
		{"GET /v1/fleet", read("fleet", opsReader), a.fleet},
		// Public keys only, and public: an appliance whose credential a
		// revoked key signed must still learn that the key is gone.
		{"GET /v1/keys", gateway.RouteOptions{Name: "get_keys", Policy: auth.Public, Timeout: 5 * time.Second}, a.getKeys},
		{"PUT /v1/keys", write("put_keys", auth.AdminOnly), a.putKeys},
		{"GET /v1/whoami", gateway.RouteOptions{Name: "whoami", Policy: auth.Public}, a.whoami},
		{"POST /v1/apikeys", write("create_api_key", auth.AdminOnly), a.createAPIKey},
		{"GET /v1/apikeys", read("list_api_keys", auth.AdminOnly), a.listAPIKeys},
		{"DELETE /v1/apikeys/{id}", write("delete_api_key", auth.AdminOnly), a.deleteAPIKey},
		{"GET /v1/appliances", read("list_appliances", opsReader), a.listAppliances},
		{"PUT /v1/appliances/{id}", write("put_appliance", auth.AdminOnly), a.putAppliance},
		{"DELETE /v1/appliances/{id}", write("delete_appliance", auth.AdminOnly), a.deleteAppliance},
		{"POST /v1/appliances/{id}/fillpass", gateway.RouteOptions{Name: "fill_pass", Policy: applianceSelf, Timeout: 2 * time.Second, Priority: gateway.PriorityCritical}, a.fillPass},
		{"POST /v1/appliances/{id}/heartbeat", gateway.RouteOptions{Name: "heartbeat", Policy: applianceSelf, Timeout: 2 * time.Second, Priority: gateway.PriorityCritical}, a.heartbeat},
		{"GET /v1/appliances/{id}/manifest", gateway.RouteOptions{Name: "get_manifest", Policy: ownManifest, Streaming: true, Timeout: 30 * time.Second, Priority: gateway.PriorityPlayback}, a.getManifest},
		{"PUT /v1/appliances/{id}/manifest", write("put_manifest", opScope), a.putManifest},
		{"POST " + fleet.PeerPath, gateway.RouteOptions{Name: "peer_heartbeat", Policy: nodeOnly, Timeout: 2 * time.Second, Priority: gateway.PriorityCritical}, a.peerHeartbeat},
		{"GET /v1/cluster", read("cluster", clusterReader), a.cluster},
		{"POST " + cluster.JoinPath, gateway.RouteOptions{Name: "join", Policy: nodeOnly, Streaming: true, Timeout: 30 * time.Second, Priority: gateway.PriorityCritical}, wrap(a.d.Node.ServeJoin)},
		{"POST " + cluster.ReadIndexPath, gateway.RouteOptions{Name: "read_index", Policy: nodeOnly, Timeout: 2 * time.Second, Priority: gateway.PriorityCritical}, wrap(a.d.Node.ServeReadIndex)},
		{"POST " + cluster.ApplyPath, gateway.RouteOptions{Name: "apply", Policy: nodeOnly, Streaming: true, Timeout: a.cfg.WriteTimeout + time.Second, Priority: gateway.PriorityCritical, MaxBodyBytes: 32 << 20}, wrap(a.d.Node.ServeApply)},
		{"GET /healthz", gateway.RouteOptions{Name: "healthz", Policy: auth.Public, Streaming: true, Priority: gateway.PriorityCritical}, a.healthz},
		{"GET /readyz", gateway.RouteOptions{Name: "readyz", Policy: auth.Public, Streaming: true, Priority: gateway.PriorityCritical}, a.readyz},
		{"DELETE /v1/cluster/members/{id}", write("remove_member", auth.AdminOnly), a.removeMember},
		{"GET " + cluster.BackupPath, gateway.RouteOptions{Name: "backup", Policy: auth.AdminOnly, Streaming: true, Timeout: time.Hour, Priority: gateway.PriorityBrowse}, a.backup},
		{"POST " + cluster.RemovePath, gateway.RouteOptions{Name: "remove_member_forward", Policy: nodeOnly, Timeout: 30 * time.Second, Priority: gateway.PriorityCritical}, wrap(a.d.Node.ServeRemove)},
		{"GET /metrics", gateway.RouteOptions{Name: "metrics", Policy: opsReader, Streaming: true, Timeout: 10 * time.Second, Priority: gateway.PriorityCritical}, wrap(promhttp.HandlerFor(a.d.Registry, promhttp.HandlerOpts{}).ServeHTTP)},
	}
	if a.d.UI != nil {
		page := func(name string) gateway.RouteOptions {
			return gateway.RouteOptions{Name: name, Policy: auth.Public, Streaming: true, Timeout: time.Minute, Priority: gateway.PriorityBrowse}
		}
		routes = append(routes, route{"GET /{$}", page("web_page"), wrap(a.d.UI.ServeHTTP)}, route{"GET /ui/", page("web_assets"), wrap(a.d.UI.ServeHTTP)})
	}
	routes = append(append(append(routes, a.viewerRoutes()...), a.billingRoutes()...), a.discoveryRoutes()...)
	// Rules may name the routes of clients, not the cluster's own (a
	// static answer to forwarded writes would stop the cluster, and
	// critical routes are not rate limited) nor the rules' (no rule may
	// lock operators out of deleting it: those are exempt from limit
	// rules too, see ruleSafe).
	a.routeTable = rules.RouteTable{}
	for _, rt := range routes {
		if rt.opts.Priority != gateway.PriorityCritical && !rt.opts.Policy.NodesOnly {
			a.routeTable[rt.pattern] = rt.opts.Name
		}
	}
	ruleRoutes := a.ruleRoutes(read, write)
	a.unlimited = map[string]bool{}
	for _, rt := range ruleRoutes {
		a.unlimited[rt.opts.Name] = true
	}
	for _, rt := range append(routes, ruleRoutes...) {
		if err := a.gw.Handle(rt.pattern, rt.opts, a.reportStale(rt)); err != nil {
			return fmt.Errorf("api: route %s: %w", rt.pattern, err)
		}
	}
	return nil
}

// route is one pattern, its gateway options and its handler.
type route struct {
	pattern string
	opts    gateway.RouteOptions
	h       gateway.HandlerFunc
}

// wrap adapts a plain handler that writes its own errors.
func wrap(h http.HandlerFunc) gateway.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h(w, r)
		return nil
	}
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte("ok\n"))
	return err
}

// apply replicates cmd with the route's write timeout and maps errors to
// statuses.
// The request's id goes with the command, so that a client retrying the
// write with the same X-Request-Id after a leader change is applied once;
// with a digest of the command, so that one id reused for another write
// does not swallow it.
func (a *API) apply(ctx context.Context, cmd fsm.Command) error {
	cmd.Stamp(gateway.RequestID(ctx))
	ctx, cancel := context.WithTimeout(ctx, a.cfg.WriteTimeout)
	defer cancel()
	if err := a.d.Node.Apply(ctx, cmd); err != nil {
		return applyError(err)
	}
	return nil
}

// applyError maps the errors of a write (of the replicated state or of
// the accounts, whichever store keeps them) to statuses.
func applyError(err error) error {
	switch {
	case errors.Is(err, fsm.ErrInvalid), errors.Is(err, accounts.ErrInvalid):
		return &gateway.Error{Status: http.StatusBadRequest, Message: err.Error(), Err: err}
	case errors.Is(err, fsm.ErrExists), errors.Is(err, fsm.ErrLimit), errors.Is(err, fillcast.ErrConflict):
		return &gateway.Error{Status: http.StatusConflict, Message: err.Error(), Err: err}
	case errors.Is(err, fsm.ErrNotFound):
		return &gateway.Error{Status: http.StatusNotFound, Message: err.Error(), Err: err}
	case errors.Is(err, cluster.ErrNoLeader):
		return &gateway.Error{Status: http.StatusServiceUnavailable, Message: "no leader: a majority of control-plane nodes must be up for writes", RetryAfter: time.Second, Err: err}
	case errors.Is(err, cluster.ErrStale):
		return staleError(err)
	case errors.Is(err, context.DeadlineExceeded):
		// Proposed, perhaps committed: not a 503, which says nothing
		// happened and invites a retry elsewhere.
		return &gateway.Error{Status: http.StatusGatewayTimeout, Message: "the write did not finish in time; it may still be applied: read before writing again", Err: err}
	}
	return err
}

func (a *API) read(fn func(s *fsm.State)) { a.d.Node.FSM().Read(fn) }
