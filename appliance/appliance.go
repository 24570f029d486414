// Package appliance assembles an edge node: the two-tier cache, the
// upstream client that fills it, the fasthttp server in front (over TLS
// when a certificate is given) and, with H3, an HTTP/3 server on the UDP
// port of the same number that runs the same request handler. It serves
// on sockets handed to it, so the upgrader can pass them to the next
// process, and drains before a planned stop: it tells the control plane it
// is draining and waits until steering has moved new players away. The
// fill executor hands the server the catalog's renditions from each fill
// manifest, by which it enforces the limits of playback tokens. The
// heartbeats carry the p99 response time and error ratio of the requests
// since the previous one, for the control plane's squeeze tests; an
// optional access log (Config.AccessLog) carries each request's W3C
// trace id. cmd/fillcast only parses flags into a Config and wires the
// parts.
package appliance

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/accesslog"
	"github.com/fillcast/fillcast/appliance/agent"
	"github.com/fillcast/fillcast/appliance/cache"
	"github.com/fillcast/fillcast/appliance/fill"
	"github.com/fillcast/fillcast/appliance/h3"
	"github.com/fillcast/fillcast/appliance/server"
	"github.com/fillcast/fillcast/appliance/upstream"
	"github.com/fillcast/fillcast/appliance/usage"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"
)

// Config is everything an appliance is set up with; the secrets it works
// with come in Deps. Zero values mean the defaults named.
type Config struct {
	// ID is the appliance's id. Required.
	ID string
	// Site is the id of the site it is installed in. Required.
	Site string
	// Profile is fillcast.ProfileFlash or fillcast.ProfileStorage. Zero
	// means storage.
	Profile string
	// HTTP is the listen address, e.g. ":8080". Zero means
	// 127.0.0.1:8080.
	HTTP string
	// Cache configures the tiers (Dir, MemBytes, DiskBytes...).
	Cache cache.Config
	// Upstream configures the miss path.
	Upstream upstream.Config
	// Server configures request handling. Zero AltSvc means the header
	// advertising HTTP/3 on HTTP's port when H3 is on.
	Server server.Config
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
	// ControlPlanes, when set, turn on heartbeats and fills with these
	// control-plane URLs. The client learns the other nodes from any one,
	// but only in memory: give two or more (or a DNS name of every node)
	// so that an appliance restarted while one node is down finds the
	// others. The first is also the steering URL that players' manifests
	// advertise unless Server.SteeringURL is set.
	ControlPlanes []string
	// AdvertiseURL is the URL players and peers reach this appliance at,
	// sent in heartbeats. Zero means http://{HTTP}, or https:// with a
	// certificate.
	AdvertiseURL string
	// HeartbeatInterval is the time between heartbeats, and the longest a
	// heartbeat waits for one control-plane node before it tries the
	// next. Zero means 2 s.
	HeartbeatInterval time.Duration
	// FillRateBits caps off-peak fill traffic (bits per second). Zero
	// means 1.2 Gbit/s.
	FillRateBits float64
	// FillPoll is how often the fill manifest is fetched. Zero means 30 s.
	FillPoll time.Duration
	// Now judges the fill window (nil: time.Now; bench/fillsim compresses
	// it); tokens, heartbeats and timeouts keep the wall clock.
	Now func() time.Time
	// TLSCert and TLSKey are PEM files. When set, HTTP/1.1 is served over
	// TLS. HTTP/3 requires them.
	TLSCert, TLSKey string
	// TLSCA, when set, is the PEM file of the CA that https control-plane
	// nodes, peers and origins are checked against, and the appliance
	// presents TLSCert (an appliance certificate of that CA, see fillcast
	// certs) to them as its client certificate. Empty means the system's
	// roots and no client certificate.
	TLSCA string
	// H3 turns on HTTP/3 on the UDP port with the number of HTTP's TCP
	// port, and the Alt-Svc header that advertises it.
	H3 bool
	// UDPBufferBytes is the HTTP/3 socket's buffer size. Zero means 8 MiB.
	UDPBufferBytes int
	// DrainTimeout bounds Drain: the wait for steering to move new players
	// away. Zero means 60 s.
	DrainTimeout time.Duration
	// DrainQuiet is how long no new playback session (a request for a
	// master playlist or an MPD) must have arrived, after the control plane
	// accepted the draining heartbeat, for Drain to take it that steering
	// sends new players elsewhere. Zero means 10 s.
	DrainQuiet time.Duration
	// UsageInterval is the time between two usage summaries (requests,
	// bytes, statuses and the players' CMCD per title and rendition) sent
	// to the control plane, with ControlPlanes. Zero means 10 s; at least
	// 10 ms.
	UsageInterval time.Duration
	// AccessLog, when set, is the file the access log is appended to
	// (created if need be): a JSON line per content request with its
	// status, bytes, time taken and the W3C trace id of the playback
	// (package appliance/accesslog), written out every second. Empty
	// means none: it costs about half a microsecond of CPU and 250 bytes
	// of disk per request (BenchmarkMemoryHitAccessLog against
	// BenchmarkMemoryHit in appliance/server).
	AccessLog string
}

// DefaultConfig returns a Config with every default filled in, the
// parts' defaults included: the flags of cmd/fillcast take theirs from it.
func DefaultConfig() Config {
	ag, fl := agent.DefaultConfig(), fill.DefaultConfig()
	return Config{
		Profile:           fillcast.ProfileStorage,
		HTTP:              "127.0.0.1:8080",
		Cache:             cache.DefaultConfig(),
		Upstream:          upstream.DefaultConfig(),
		Server:            server.DefaultConfig(),
		MaxConns:          10000,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ShutdownTimeout:   30 * time.Second,
		HeartbeatInterval: ag.Interval,
		FillRateBits:      fl.RateBits,
		FillPoll:          fl.Poll,
		UDPBufferBytes:    8 << 20,
		DrainTimeout:      60 * time.Second,
		DrainQuiet:        10 * time.Second,
		UsageInterval:     agent.DefaultUsageConfig().Interval,
	}
}

// Validate reports the first problem of c, or of the parts' configs it
// holds, as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return fillcast.ConfigErrorf("appliance", "ID", "required: the appliance's id")
	case c.Site == "":
		return fillcast.ConfigErrorf("appliance", "Site", "required: the id of the site the appliance is installed in")
	case c.Profile != "" && c.Profile != fillcast.ProfileFlash && c.Profile != fillcast.ProfileStorage:
		return fillcast.ConfigErrorf("appliance", "Profile", "%q: want flash or storage", c.Profile)
	case c.TLSCert != "" && c.TLSKey == "":
		return fillcast.ConfigErrorf("appliance", "TLSKey", "required with a certificate: the file of its private key")
	case c.TLSKey != "" && c.TLSCert == "":
		return fillcast.ConfigErrorf("appliance", "TLSCert", "required with a private key: the file of its certificate")
	case c.H3 && c.TLSCert == "":
		return fillcast.ConfigErrorf("appliance", "TLSCert", "required with HTTP/3, as is the key: QUIC is always encrypted")
	case c.MaxConns < 0:
		return fillcast.ConfigErrorf("appliance", "MaxConns", "%d is negative", c.MaxConns)
	case c.UDPBufferBytes < 0:
		return fillcast.ConfigErrorf("appliance", "UDPBufferBytes", "%d is negative", c.UDPBufferBytes)
	case c.FillRateBits < 0:
		return fillcast.ConfigErrorf("appliance", "FillRateBits", "%v is negative", c.FillRateBits)
	case c.UsageInterval > 0 && c.UsageInterval < agent.MinUsageInterval:
		return fillcast.ConfigErrorf("appliance", "UsageInterval", "%v: want at least %v (0 means 10s)", c.UsageInterval, agent.MinUsageInterval)
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"ReadTimeout", c.ReadTimeout}, {"IdleTimeout", c.IdleTimeout}, {"ShutdownTimeout", c.ShutdownTimeout},
		{"HeartbeatInterval", c.HeartbeatInterval}, {"FillPoll", c.FillPoll},
		{"DrainTimeout", c.DrainTimeout}, {"DrainQuiet", c.DrainQuiet}, {"UsageInterval", c.UsageInterval},
	} {
		if f.v < 0 {
			return fillcast.ConfigErrorf("appliance", f.name, "%v is negative", f.v)
		}
	}
	if len(c.ControlPlanes) > 0 {
		if err := c.clientConfig().Validate(); err != nil {
			var ce *fillcast.ConfigError
			if errors.As(err, &ce) {
				return fillcast.ConfigErrorf("appliance", "ControlPlanes", "%s", ce.Problem)
			}
			return err
		}
	}
	if c.H3 {
		addr := c.withDefaults().HTTP
		_, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n <= 0 {
			return fillcast.ConfigErrorf("appliance", "HTTP", "%q: HTTP/3 needs a fixed port (the UDP port has the same number)", addr)
		}
	}
	if err := c.Cache.Validate(); err != nil {
		return fillcast.InField("Cache", err)
	}
	if err := c.Upstream.Validate(); err != nil {
		return fillcast.InField("Upstream", err)
	}
	if err := c.Server.Validate(); err != nil {
		return fillcast.InField("Server", err)
	}
	return c.validateSteering()
}

// WithDefaults returns c with every zero field of its own set to its
// default, as New uses it (the parts' Configs get theirs in the parts'
// constructors). It is for a caller that needs a value before New, such
// as the address whose socket it opens.
func (c Config) WithDefaults() Config { return c.withDefaults() }

// withDefaults fills the zero fields, and the fields of the parts that
// come from the appliance's own.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Profile = cmp.Or(c.Profile, d.Profile)
	c.HTTP = cmp.Or(c.HTTP, d.HTTP)
	c.MaxConns = cmp.Or(c.MaxConns, d.MaxConns)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, d.ReadTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, d.HeartbeatInterval)
	c.FillRateBits = cmp.Or(c.FillRateBits, d.FillRateBits)
	c.FillPoll = cmp.Or(c.FillPoll, d.FillPoll)
	c.UDPBufferBytes = cmp.Or(c.UDPBufferBytes, d.UDPBufferBytes)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, d.DrainTimeout)
	c.DrainQuiet = cmp.Or(c.DrainQuiet, d.DrainQuiet)
	c.UsageInterval = cmp.Or(c.UsageInterval, d.UsageInterval)
	// The server's write timeout bounds the whole connection's writes
	// too, so the fasthttp server needs it with its default (server.New
	// applies it for itself but does not say what it is).
	c.Server.WriteTimeout = cmp.Or(c.Server.WriteTimeout, d.Server.WriteTimeout)
	c.Server.SteeringURL, c.Server.TLS = c.steeringURL(), c.Server.TLS || c.TLSCert != ""
	if c.H3 && c.Server.AltSvc == "" {
		_, port, _ := net.SplitHostPort(c.HTTP)
		c.Server.AltSvc = `h3=":` + port + `"; ma=86400`
	}
	if c.AdvertiseURL == "" {
		scheme := "http://"
		if c.TLSCert != "" {
			scheme = "https://"
		}
		c.AdvertiseURL = scheme + c.HTTP
	}
	return c
}

// clientConfig is the control-plane client's Config: a heartbeat waits
// on one node for at most an interval, since steering drops an appliance
// whose last beat is a few intervals old; manifests keep the client's
// Timeout. c has its defaults.
func (c Config) clientConfig() client.Config {
	return client.Config{URLs: c.ControlPlanes, HeartbeatTimeout: c.HeartbeatInterval}
}

// Deps are what an appliance works with besides its Config.
type Deps struct {
	// Keys verify player tokens and peers' fill passes: give the public
	// keys (fillcast keys public). A private set works, with a warning,
	// and then signs the appliance's own fill passes (a lab). Required.
	Keys *auth.Keys
	// Credential is the appliance's credential (auth.SignCredential,
	// issued when an operator registers it): its bearer token at the
	// control plane, which answers it the fill passes it shows site peers
	// and the origin. Empty: the admin token at the control plane.
	Credential string
	// AdminToken authorises /admin/ calls and /v1/status, and is the
	// appliance's bearer token at the control plane when it has no
	// Credential; empty disables /admin/ and /v1/status.
	AdminToken string
	// Log receives the appliance's log; nil discards it.
	Log *slog.Logger
}

// Appliance is a running edge node.
type Appliance struct {
	cfg   Config
	log   *slog.Logger
	cache *cache.Cache
	up    *upstream.Client
	pass  *fillPass // what up shows peers and the origin
	srv   *server.Server
	hs    *fasthttp.Server
	cp    *client.Client       // nil without control planes
	agent *agent.Agent         // nil without control planes
	fill  *fill.Executor       // nil without control planes
	rec   *usage.Recorder      // nil without control planes
	usage *agent.UsageReporter // nil without control planes
	tls   *tls.Config          // nil without a certificate
	// access is the access log, writing to accessFile; both nil without
	// Config.AccessLog.
	access     *accesslog.Log
	accessFile *os.File
	start      time.Time
	once       sync.Once
	// lastSession is when (Unix ns) a player last started a session here.
	lastSession atomic.Int64
}

// New opens the cache (rebuilding the disk index) and the access log,
// and builds the server.
func New(cfg Config, d Deps) (*Appliance, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Keys == nil {
		return nil, errors.New("appliance: Deps.Keys is required: they verify player tokens and peers' credentials")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	cfg, log := cfg.withDefaults(), d.Log
	a := &Appliance{cfg: cfg, log: log, start: time.Now()}
	err := checkSecrets(d, log)
	if err != nil {
		return nil, err
	}
	if a.rec, err = newRecorder(cfg); err != nil {
		return nil, err
	}
	a.pass = &fillPass{id: cfg.ID}
	if d.Keys.CanSign() {
		a.pass.keys = d.Keys // a lab: it signs its own passes
	}
	if cfg.TLSCert != "" {
		if a.tls, err = loadTLS(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
	}
	upTLS, cpTLS, err := cfg.clientTLS()
	if err != nil {
		return nil, err
	}
	if a.up, err = upstream.New(cfg.Upstream, upstream.Deps{Pass: a.pass.header, TLS: upTLS, Log: log}); err != nil {
		return nil, err
	}
	if a.cache, err = cache.New(cfg.Cache, a.up, log); err != nil {
		return nil, err
	}
	if err = a.openAccessLog(); err != nil {
		a.cache.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if a.srv, err = server.New(cfg.Server, server.Deps{
		Cache: a.cache, Keys: d.Keys, AdminToken: d.AdminToken, Status: a.Status, Gatherer: reg, Log: log, Usage: a.recorder(),
		AccessLog: a.accessLog(),
	}); err != nil {
		a.cache.Close()
		a.closeAccessLog()
		return nil, err
	}
	reg.MustRegister(a.srv.Collector(), newCollector(a), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.access != nil {
		reg.MustRegister(newAccessLogCollector(a.access))
	}
	if len(cfg.ControlPlanes) > 0 {
		// One client for both: what one learns of the cluster's members
		// and which node answers serves the other.
		var retries *protect.Metrics
		if retries, err = protect.NewMetrics(reg); err == nil {
			a.cp, err = client.New(cfg.clientConfig(), client.Deps{Token: cmp.Or(d.Credential, d.AdminToken), TLS: cpTLS, Log: log, Metrics: retries})
		}
		if err == nil {
			a.agent, err = agent.New(agent.Config{
				ID: cfg.ID, Site: cfg.Site, Profile: cfg.Profile, URL: cfg.AdvertiseURL, Interval: cfg.HeartbeatInterval,
				StateFile: cfg.takedownState(),
			}, agent.Deps{ControlPlane: a.cp, Read: a.counters, OnKeys: a.replicatedKeys, OnFillPass: a.pass.set, Log: log,
				Purger: purger{a}, OnRefusals: a.srv.SetTakedowns})
		}
		if err == nil {
			a.fill, err = fill.New(fill.Config{ID: cfg.ID, RateBits: cfg.FillRateBits, Poll: cfg.FillPoll, Now: cfg.Now},
				fill.Deps{ControlPlane: a.cp, Cache: a.cache, Source: a.up, Log: log, OnCatalog: a.catalog})
		}
		if err == nil {
			err = a.newUsageReporter(reg)
		}
		if err != nil {
			a.cache.Close()
			a.closeAccessLog()
			return nil, err
		}
	}
	a.hs = &fasthttp.Server{
		Handler:                       a.handle,
		ErrorHandler:                  a.srv.Refuse,
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
func (a *Appliance) Handler() fasthttp.RequestHandler { return a.handle }

// Serve serves on ln alone; see ServeListeners.
func (a *Appliance) Serve(ctx context.Context, ln net.Listener) error {
	return a.ServeListeners(ctx, Listeners{TCP: ln})
}

// ServeListeners serves until ctx is done, then stops accepting, lets
// in-flight responses finish (up to ShutdownTimeout), and closes the cache.
// Heartbeats run while it serves.
func (a *Appliance) ServeListeners(ctx context.Context, l Listeners) error {
	if a.cfg.H3 && l.UDP == nil {
		a.Close()
		return errors.New("appliance: HTTP/3 is on but no UDP socket was given")
	}
	ln := l.TCP
	if a.tls != nil {
		c := a.tls.Clone()
		c.NextProtos = []string{"http/1.1"}
		ln = tls.NewListener(ln, c)
	}
	a.log.Info("appliance: serving", "id", a.cfg.ID, "site", a.cfg.Site, "profile", a.cfg.Profile,
		"http", l.TCP.Addr().String(), "tls", a.tls != nil, "h3", a.cfg.H3,
		"mem_bytes", a.cfg.Cache.MemBytes, "disk_bytes", a.cache.Stats().DiskCapacity, "failed_disks", a.cache.FailedDirs())
	var q *h3.Server
	if a.cfg.H3 {
		var err error
		q, err = h3.New(h3.Config{UDPBufferBytes: a.cfg.UDPBufferBytes, MaxIdleTimeout: a.cfg.IdleTimeout}, h3.Deps{
			TLS: a.tls, Handler: h3.NewAdapter(a.handle, fasthttpLogger{a.log}),
			ConnectionIDs: l.ConnectionIDs, Log: a.log,
		})
		if err != nil {
			a.Close()
			return err
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); errc <- a.hs.Serve(ln) }()
	if q != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- q.Serve(l.UDP) }()
	}
	actx, stopAgent := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		if a.usage != nil {
			a.usage.Run(actx) // stopped with the agent, after the servers: its last summary counts every response
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if a.agent != nil {
			a.agent.Run(actx)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if a.access != nil {
			a.access.Run(actx) // stopped after the servers: it writes every response's line
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if a.fill != nil {
			a.fill.Run(actx)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.cache.Run(actx) // the scrub
	}()
	if l.ParentExited != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.adoptAfter(actx, l.ParentExited) }()
	}
	var err error
	select {
	case err = <-errc:
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	var shut sync.WaitGroup
	var herr, qerr error
	shut.Add(1)
	go func() { defer shut.Done(); herr = a.hs.ShutdownWithContext(sctx) }()
	if q != nil {
		shut.Add(1)
		go func() { defer shut.Done(); qerr = q.Shutdown(sctx) }()
	}
	shut.Wait()
	cancel()
	// A Shutdown that ran before fasthttp's Serve registered the listener
	// does nothing: closing the listener makes that Serve return too.
	l.TCP.Close()
	if q != nil {
		q.Close()
	}
	stopAgent()
	wg.Wait()
	close(errc)
	for e := range errc {
		if errors.Is(e, net.ErrClosed) {
			continue
		}
		err = errors.Join(err, e)
	}
	a.Close()
	return errors.Join(err, herr, qerr)
}

// Close releases the cache and the upstream and control-plane
// connections; safe to call twice.
func (a *Appliance) Close() error {
	a.once.Do(func() {
		a.cache.Close()
		a.up.Close()
		if a.cp != nil {
			a.cp.Close()
		}
		a.closeAccessLog()
	})
	return nil
}

// replicatedKeys takes the control plane's public keys (GET /v1/keys):
// from then on tokens and credentials verify with them alone, so keys
// rotated through the control plane work here without touching the key
// file, and a key left out of the replicated list is revoked here too.
func (a *Appliance) replicatedKeys(list []auth.Key) {
	ks, err := auth.NewKeys(list)
	if err != nil {
		a.log.Warn("appliance: replicated keys refused", "err", err)
		return
	}
	a.srv.SetKeys(ks.Public())
	a.log.Info("appliance: replicated keys in use", "keys", ks.IDs())
}

// catalog takes the catalog's renditions from a fill manifest: from then
// on the server judges restricted tokens by them, for planned and
// unplanned titles alike (until the first manifest, by rendition names
// such as "720p" alone).
func (a *Appliance) catalog(c []fillcast.TitleRenditions) {
	a.srv.SetRenditions(server.NewRenditions(c))
	a.log.Info("appliance: catalog renditions in use", "titles", len(c))
}

type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("appliance: fasthttp: " + fmt.Sprintf(format, args...))
}
