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
	"github.com/fillcast/fillcast/appliance/tlsconf"
	"github.com/fillcast/fillcast/appliance/upstream"
	"github.com/fillcast/fillcast/appliance/usage"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"
)

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
	tlsm  *tlsconf.Server      // keeps tls current; nil without a certificate
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
		if a.tlsm, err = loadTLS(cfg, log); err != nil {
			return nil, err
		}
		a.tls = a.tlsm.TLS()
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
	if a.tlsm != nil {
		reg.MustRegister(a.tlsm.Collector())
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
				fill.Deps{ControlPlane: a.cp, FileLists: a.cp, Cache: a.cache, Source: a.up, Log: log, OnCatalog: a.catalog})
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
		// Full 16 KiB records from a connection's first byte: what it
		// carries is segments, which need throughput, not a page's first
		// paint (appliance/server/stream.go writes them whole).
		c.DynamicRecordSizingDisabled = true
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
	wg.Add(1)
	go func() { defer wg.Done(); a.runTLS(actx) }()
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
