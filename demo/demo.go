// Package demo runs the whole CDN on one machine, supervised in one
// process: an origin, a control-plane node, a flash and a storage
// appliance in a site that covers loopback, sample titles made with
// ffmpeg and ingested through the real API, three plans with one viewer
// account on each, and a few viewing events of those viewers.
// It is what `fillcast demo` (and `make demo`) runs; a second run reuses
// everything already in its directory.
package demo

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane"
	"github.com/fillcast/fillcast/controlplane/planner"
)

// Config configures a demo. Zero values mean the defaults named.
type Config struct {
	// Dir holds every part's data. Zero means ./fillcast-demo.
	Dir string
	// HTTP is the control plane's address (API and, later, web UI), a
	// host:port. Zero means 127.0.0.1:8000.
	HTTP string
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if c.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
			return fillcast.ConfigErrorf("demo", "HTTP", "%q: want a host:port such as 127.0.0.1:8000", c.HTTP)
		}
	}
	return nil
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	c.Dir = cmp.Or(c.Dir, "fillcast-demo")
	c.HTTP = cmp.Or(c.HTTP, "127.0.0.1:8000")
	return c
}

// Deps are where a demo writes.
type Deps struct {
	// Out receives what a person should read; nil discards it.
	Out io.Writer
	// Log receives the parts' logs; nil discards them.
	Log *slog.Logger
}

// Run starts everything, prints where to look, and stops cleanly when ctx
// ends.
func Run(ctx context.Context, cfg Config, d Deps) error {
	dm, err := newDemo(cfg, d)
	if err != nil {
		return err
	}
	return dm.run(ctx)
}

// newDemo checks cfg, fills its defaults and makes (or loads) the secrets.
func newDemo(cfg Config, deps Deps) (*demo, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if deps.Out == nil {
		deps.Out = io.Discard
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d := &demo{dir: dir, cpAddr: cfg.HTTP, out: deps.Out, log: deps.Log, samples: samples, ready: make(chan struct{})}
	if err := d.secrets(); err != nil {
		return nil, err
	}
	return d, nil
}

// run starts the parts, sets the system up, and waits for ctx or a part
// that stops.
func (d *demo) run(ctx context.Context) error {
	sys, err := StartSystem(ctx, SystemConfig{
		Dir: d.dir,
		// Plan fills every minute rather than every ten, so the flash
		// appliance picks up the titles people watch while you try it.
		ControlPlane: func(c *controlplane.Config) { c.Planner = planner.Config{Every: time.Minute} },
	}, SystemDeps{
		Keys: d.keys, Token: d.token, Log: d.log, WrapListener: d.wrap,
		// The same ports as the previous run, so that URLs (and the raft
		// address) stay the same.
		Listen: func(name string) (net.Listener, error) {
			if name == "controlplane" {
				return d.listen(name, d.cpAddr)
			}
			return d.listen(name, "")
		},
	})
	if err == nil {
		d.sys = sys
		if err = sys.StartAppliances(); err != nil {
			sys.Stop()
		}
	}
	if err != nil {
		return err
	}
	setupErr := d.setup(ctx)
	if setupErr == nil {
		d.banner()
		close(d.ready)
	} else if ctx.Err() == nil {
		fmt.Fprintf(d.out, "\ndemo: setup failed: %v\n", setupErr)
	}
	select {
	case <-ctx.Done():
	case <-sys.Failed():
	}
	fmt.Fprintln(d.out, "\nstopping...")
	err = sys.Stop()
	if err != nil {
		fmt.Fprintf(d.out, "demo: a part stopped: %v\n", err)
	}
	if setupErr != nil && ctx.Err() == nil {
		return setupErr
	}
	return err
}

// demo is one running demo.
type demo struct {
	dir    string
	cpAddr string
	out    io.Writer
	log    *slog.Logger
	keys   *auth.Keys
	token  string
	sys    *System
	// viewers are the demo's accounts, one per plan, with the passwords
	// kept in Dir.
	viewers []viewer

	// samples are the titles made and ingested; ready closes when they
	// are. wrap, if set, wraps each appliance's listener (tests use it to
	// kill an appliance).
	samples []sample
	ready   chan struct{}
	wrap    func(id string, ln net.Listener) net.Listener
}

// secrets makes (once) and loads the key file, the admin token and the
// passwords of the demo's viewer accounts.
func (d *demo) secrets() error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	keyFile := filepath.Join(d.dir, "token-keys")
	if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(keyFile, []byte("demo1 "+randomHex(32)+"\n"), 0o600); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	var err error
	if d.keys, err = auth.LoadKeys(keyFile); err != nil {
		return err
	}
	tokenFile := filepath.Join(d.dir, "admin-token")
	if _, err := os.Stat(tokenFile); errors.Is(err, os.ErrNotExist) {
		os.WriteFile(tokenFile, []byte(randomHex(16)+"\n"), 0o600)
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.token = strings.TrimSpace(string(b))
	d.viewers, err = loadViewers(filepath.Join(d.dir, "viewer-accounts"))
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// listen opens addr, remembering the port a previous run used for name
// so that URLs (and the raft address) stay the same across runs.
func (d *demo) listen(name, addr string) (net.Listener, error) {
	portFile := filepath.Join(d.dir, name+".addr")
	if addr == "" {
		addr = "127.0.0.1:0"
		if b, err := os.ReadFile(portFile); err == nil {
			addr = strings.TrimSpace(string(b))
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && addr != "127.0.0.1:0" && !strings.Contains(addr, ":0") {
		// The remembered port is taken: take another.
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("demo: listen for %s: %w", name, err)
	}
	os.WriteFile(portFile, []byte(ln.Addr().String()+"\n"), 0o644)
	return ln, nil
}
