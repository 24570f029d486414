// Package profiling lets operators profile Fillcast processes in
// production, appliances and control-plane nodes alike: continuous
// profiling pushed to a Pyroscope server (off unless a URL is given),
// tagged (appliance id and site, or node id) so a fleet's profiles can be
// told apart, and net/http/pprof on an admin-only listener that is
// separate from the player-facing port.
package profiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/grafana/pyroscope-go"
)

// Config configures profiling. Zero values mean the defaults named.
type Config struct {
	// PyroscopeURL is the Pyroscope server profiles are pushed to; empty
	// turns continuous profiling off.
	PyroscopeURL string
	// AppName is the application name in Pyroscope. Zero means
	// "fillcast.appliance"; the control plane sets "fillcast.controlplane".
	AppName string
	// Tags label every profile; the appliance sets "appliance" and "site",
	// the control plane "node".
	Tags map[string]string
	// UploadRate is the time between uploads. Zero means 15 s; otherwise
	// at least 1 s.
	UploadRate time.Duration
}

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig() Config {
	return Config{AppName: "fillcast.appliance", UploadRate: 15 * time.Second}
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if c.UploadRate != 0 && c.UploadRate < time.Second {
		return fillcast.ConfigErrorf("profiling", "UploadRate", "%v: want at least 1s", c.UploadRate)
	}
	if c.PyroscopeURL != "" {
		u, err := url.Parse(c.PyroscopeURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fillcast.ConfigErrorf("profiling", "PyroscopeURL", "%q: want an http(s) URL such as http://pyroscope:4040", c.PyroscopeURL)
		}
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.AppName == "" {
		c.AppName = d.AppName
	}
	if c.UploadRate == 0 {
		c.UploadRate = d.UploadRate
	}
	return c
}

// Deps are what a Profiler works with besides its Config.
type Deps struct {
	// AdminToken, when set, is required (Authorization: Bearer) on the
	// pprof listener, in addition to that listener being admin-only.
	AdminToken string
	// Log receives the profiler's messages; nil discards them.
	Log *slog.Logger
}

// Profiler owns the Pyroscope session and the pprof listener.
type Profiler struct {
	cfg   Config
	d     Deps
	log   *slog.Logger
	pyro  *pyroscope.Profiler
	admin *http.Server
	wg    sync.WaitGroup
	once  sync.Once
}

// Start starts continuous profiling when a Pyroscope URL is set.
func Start(cfg Config, d Deps) (*Profiler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	cfg, log := cfg.withDefaults(), d.Log
	p := &Profiler{cfg: cfg, d: d, log: log}
	if cfg.PyroscopeURL == "" {
		return p, nil
	}
	pyro, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: cfg.AppName,
		ServerAddress:   cfg.PyroscopeURL,
		Tags:            cfg.Tags,
		UploadRate:      cfg.UploadRate,
		Logger:          pyroLogger{log},
		ProfileTypes: []pyroscope.ProfileType{
			pyroscope.ProfileCPU, pyroscope.ProfileAllocObjects, pyroscope.ProfileAllocSpace,
			pyroscope.ProfileInuseSpace, pyroscope.ProfileGoroutines,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("profiling: start pyroscope: %w", err)
	}
	p.pyro = pyro
	log.Info("profiling: pushing profiles to pyroscope", "url", cfg.PyroscopeURL, "app", cfg.AppName, "tags", cfg.Tags)
	return p, nil
}

// ServeAdmin serves /debug/pprof/ on ln until Close. ln should be bound to
// a loopback or management address: it is for operators, not players.
func (p *Profiler) ServeAdmin(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	p.admin = &http.Server{Handler: p.authorise(mux), ReadHeaderTimeout: 10 * time.Second}
	p.log.Info("profiling: pprof on the admin listener", "addr", ln.Addr().String(), "token_required", p.d.AdminToken != "")
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := p.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("profiling: admin listener", "err", err)
		}
	}()
}

// authorise requires the admin token, read as every admin route of the
// project reads it (auth.BearerOK), when one is set; without one the
// listener's being admin-only is the guard.
func (p *Profiler) authorise(h http.Handler) http.Handler {
	if p.d.AdminToken == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.BearerOK(r.Header.Get("Authorization"), p.d.AdminToken) {
			http.Error(w, "profiling: admin token required (Authorization: Bearer)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Close stops the admin listener and uploads the last profiles. Safe to
// call twice.
func (p *Profiler) Close() error {
	p.once.Do(func() {
		if p.admin != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p.admin.Shutdown(ctx)
			cancel()
		}
		p.wg.Wait()
		if p.pyro != nil {
			p.pyro.Stop()
		}
	})
	return nil
}

// pyroLogger sends pyroscope-go's messages to slog.
type pyroLogger struct{ log *slog.Logger }

func (l pyroLogger) Infof(f string, a ...any) {
	l.log.Debug("profiling: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (l pyroLogger) Debugf(f string, a ...any) {
	l.log.Debug("profiling: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (l pyroLogger) Errorf(f string, a ...any) {
	l.log.Warn("profiling: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
