// Package appliance assembles an edge node: the two-tier cache, the
// upstream client that fills it, and the fasthttp server in front, from
// one Config. cmd/fillcast only parses flags into a Config and calls Run.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/agent"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/appliance/server"
	"github.com/fillcast/fillcast/appliance/upstream"
	"github.com/fillcast/fillcast/steering/urlsign"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"
)

// Config is everything an appliance needs.
type Config struct {
	ID      string // appliance id; required
	Site    string // site id; required
	Profile string // fillcast.ProfileFlash or fillcast.ProfileStorage
	// HTTP is the listen address, e.g. ":8080".
	HTTP string
	// Cache configures the tiers (Dir, MemBytes, DiskBytes...).
	Cache cache.Config
	// Upstream configures the miss path; its Keys are set from Keys.
	Upstream upstream.Config
	// Server configures request handling; its Keys are set from Keys.
	Server server.Config
	// Keys verify player tokens and sign upstream fetches. Required.
	Keys *urlsign.Keys
	// MaxConns caps concurrent connections. Zero means 10000.
	MaxConns int
	// ReadTimeout bounds reading a request's headers. Zero means 10 s.
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Zero
	// means 60 s.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the wait for in-flight responses when Run
	// stops. Zero means 30 s.
	ShutdownTimeout time.Duration
	// ControlPlanes, when set, turn on heartbeats to these control-plane
	// URLs.
	ControlPlanes []string
	// AdvertiseURL is the URL players and peers reach this appliance at,
	// sent in heartbeats. Empty means http://{HTTP}.
	AdvertiseURL string
	// HeartbeatInterval is the time between heartbeats. Zero means 2 s.
	HeartbeatInterval time.Duration
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Profile:         fillcast.ProfileStorage,
		HTTP:            "127.0.0.1:8080",
		Cache:           cache.DefaultConfig(),
		MaxConns:        10000,
		ReadTimeout:     10 * time.Second,
		IdleTimeout:     60 * time.Second,
		ShutdownTimeout: 30 * time.Second,
	}
}

// Validate fills defaults and reports the first problem, checking the
// parts' configs too.
func (c *Config) Validate() error {
	d := DefaultConfig()
	if c.ID == "" || c.Site == "" {
		return errors.New("appliance: --id and --site are required")
	}
	if c.Profile != fillcast.ProfileFlash && c.Profile != fillcast.ProfileStorage {
		return fmt.Errorf("appliance: --profile %q: want flash or storage", c.Profile)
	}
	if c.Keys == nil {
		return errors.New("appliance: token keys are required (--token-keys)")
	}
	if c.HTTP == "" {
		c.HTTP = d.HTTP
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.AdvertiseURL == "" {
		c.AdvertiseURL = "http://" + c.HTTP
	}
	c.Upstream.Keys, c.Server.Keys = c.Keys, c.Keys
	if err := c.Cache.Validate(); err != nil {
		return err
	}
	if err := c.Upstream.Validate(); err != nil {
		return err
	}
	return c.Server.Validate()
}

// Appliance is a running edge node.
type Appliance struct {
	cfg   Config
	log   *slog.Logger
	cache *cache.Cache
	up    *upstream.Client
	srv   *server.Server
	hs    *fasthttp.Server
	agent *agent.Agent // nil without control planes
	start time.Time
	once  sync.Once
}

// New opens the cache (rebuilding the disk index) and builds the server.
func New(cfg Config, log *slog.Logger) (*Appliance, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Appliance{cfg: cfg, log: log, start: time.Now()}
	var err error
	if a.up, err = upstream.New(cfg.Upstream, log); err != nil {
		return nil, err
	}
	if a.cache, err = cache.New(cfg.Cache, a.up, log); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	scfg := cfg.Server
	scfg.Gatherer = reg
	scfg.Status = a.Status
	if a.srv, err = server.New(scfg, a.cache); err != nil {
		a.cache.Close()
		return nil, err
	}
	reg.MustRegister(a.srv.Collector(), newCollector(a), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if len(cfg.ControlPlanes) > 0 {
		a.agent, err = agent.New(agent.Config{
			ID: cfg.ID, Site: cfg.Site, Profile: cfg.Profile, URL: cfg.AdvertiseURL,
			ControlPlanes: cfg.ControlPlanes, AdminToken: cfg.Server.AdminToken,
			Interval: cfg.HeartbeatInterval, Read: a.counters,
		}, log)
		if err != nil {
			a.cache.Close()
			return nil, err
		}
	}
	a.hs = &fasthttp.Server{
		Handler:                       a.srv.Handle,
		Name:                          "fillcast",
		Concurrency:                   cfg.MaxConns,
		ReadTimeout:                   cfg.ReadTimeout,
		WriteTimeout:                  cfg.Server.WriteTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		ReadBufferSize:                8 << 10,
		MaxRequestBodySize:            64 << 10,
		DisableHeaderNamesNormalizing: false,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{log},
	}
	return a, nil
}

// Handler returns the request handler (for tests and HTTP/3 adapters).
func (a *Appliance) Handler() fasthttp.RequestHandler { return a.srv.Handle }

// Serve serves on ln until ctx is done, then stops accepting, lets
// in-flight responses finish (up to ShutdownTimeout) and closes the cache.
func (a *Appliance) Serve(ctx context.Context, ln net.Listener) error {
	a.log.Info("appliance: serving", "id", a.cfg.ID, "site", a.cfg.Site, "profile", a.cfg.Profile,
		"http", ln.Addr().String(), "mem_bytes", a.cfg.Cache.MemBytes, "disk_bytes", a.cfg.Cache.DiskBytes)
	errc := make(chan error, 1)
	go func() { errc <- a.hs.Serve(ln) }()
	actx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan struct{})
	go func() {
		defer close(agentDone)
		if a.agent != nil {
			a.agent.Run(actx)
		}
	}()
	defer func() { stopAgent(); <-agentDone }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		err = a.hs.ShutdownWithContext(sctx)
		cancel()
		if serr := <-errc; err == nil {
			err = serr
		}
	}
	a.Close()
	return err
}

// Close releases the cache and upstream connections; safe to call twice.
func (a *Appliance) Close() error {
	a.once.Do(func() {
		a.cache.Close()
		a.up.Close()
	})
	return nil
}

// counters feeds the heartbeat agent.
func (a *Appliance) counters() agent.Counters {
	u := a.srv.Usage()
	s := a.cache.Stats()
	return agent.Counters{Requests: u.Requests, Bytes: u.Bytes, TitleBytes: u.TitleBytes,
		UsedBytes: s.DiskUsed, CapacityBytes: s.DiskCapacity}
}

type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("appliance: fasthttp: " + fmt.Sprintf(format, args...))
}
