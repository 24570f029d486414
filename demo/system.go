package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/origin"
)

// SystemConfig configures a System: one ISP site on one machine; its
// secrets and test hooks come in SystemDeps. Zero values mean the
// defaults named.
type SystemConfig struct {
	// Dir holds the control plane's data and the appliances' caches.
	// Required.
	Dir string
	// OriginRoot is the origin's directory. Zero means Dir/origin.
	OriginRoot string
	// Site is the site the appliances are installed in. Zero means
	// "demo-isp".
	Site string
	// FlashDisk, StorageDisk, FlashMem and StorageMem size the tiers of
	// the two appliances. Zero means 2 GiB, 20 GiB, 256 MiB and 128 MiB.
	FlashDisk, StorageDisk, FlashMem, StorageMem int64
	// ControlPlane and Appliance, if set, adjust a part's configuration
	// before it starts: its clock, planner, fill rate, intervals.
	ControlPlane func(*controlplane.Config)
	Appliance    func(*appliance.Config)
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c SystemConfig) Validate() error {
	if c.Dir == "" {
		return fillcast.ConfigErrorf("demo", "Dir", "required: the directory of the control plane's data and the caches")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"FlashDisk", c.FlashDisk}, {"StorageDisk", c.StorageDisk}, {"FlashMem", c.FlashMem}, {"StorageMem", c.StorageMem}} {
		if f.v < 0 {
			return fillcast.ConfigErrorf("demo", f.name, "%d is negative", f.v)
		}
	}
	return nil
}

// withDefaults fills the zero fields; c has passed Validate.
func (c SystemConfig) withDefaults() SystemConfig {
	c.OriginRoot = cmp.Or(c.OriginRoot, filepath.Join(c.Dir, "origin"))
	c.Site = cmp.Or(c.Site, "demo-isp")
	c.FlashDisk = cmp.Or(c.FlashDisk, 2<<30)
	c.StorageDisk = cmp.Or(c.StorageDisk, 20<<30)
	c.FlashMem = cmp.Or(c.FlashMem, 256<<20)
	c.StorageMem = cmp.Or(c.StorageMem, 128<<20)
	return c
}

// SystemDeps are what a System works with besides its SystemConfig.
type SystemDeps struct {
	// Keys sign and verify URLs; Token is the admin token. Required.
	Keys  *auth.Keys
	Token string
	// Listen opens the listener of a part: "origin", "controlplane",
	// "raft" (closed again: raft opens it), "flash1", "storage1". Nil
	// means 127.0.0.1 on a free port.
	Listen func(name string) (net.Listener, error)
	// WrapOrigin, if set, wraps the origin's handler (to count what it
	// sends, say); WrapListener each appliance's listener (tests kill
	// appliances with it).
	WrapOrigin   func(http.Handler) http.Handler
	WrapListener func(id string, ln net.Listener) net.Listener
	// Client carries the API calls of System.API. Nil means a client of
	// its own.
	Client *http.Client
	// Log receives every part's log; nil discards it.
	Log *slog.Logger
}

// System is a running site on loopback: an origin, a control-plane node
// (a cluster of one), and a flash and a storage appliance, each the
// other's tier-fill peer before the origin. The demo, its browser test
// and the fill simulation (bench/fillsim) are built on it.
type System struct {
	cfg SystemConfig
	d   SystemDeps
	// OriginURL and ControlPlaneURL are the parts' base URLs.
	OriginURL, ControlPlaneURL string
	// Appliances maps each appliance id to its base URL.
	Appliances map[string]string
	// API calls the control plane with the admin token.
	API *client.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	failed chan struct{}
	once   sync.Once
}

// StartSystem starts the origin and the control plane and waits until it
// has a leader; StartAppliances then starts the appliances (after the
// caller has put its sites, say).
func StartSystem(ctx context.Context, cfg SystemConfig, d SystemDeps) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Keys == nil || d.Token == "" {
		return nil, errors.New("demo: SystemDeps.Keys and SystemDeps.Token are required")
	}
	if d.Listen == nil {
		d.Listen = func(string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &System{cfg: cfg.withDefaults(), d: d, Appliances: map[string]string{}, ctx: ctx, cancel: cancel, failed: make(chan struct{})}
	err := s.startOrigin()
	if err == nil {
		err = s.startControlPlane()
	}
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Failed is closed when a part stops on its own (Stop says why).
func (s *System) Failed() <-chan struct{} { return s.failed }

// Stop stops every part, waits for them, and returns what failed while
// they ran. Safe to call twice.
func (s *System) Stop() error {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// run starts a part in a goroutine the system owns.
func (s *System) run(name string, f func(context.Context) error) {
	s.wg.Go(func() {
		if err := f(s.ctx); err != nil && s.ctx.Err() == nil {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.mu.Unlock()
			s.once.Do(func() { close(s.failed) })
		}
	})
}

func (s *System) listen(name string) (net.Listener, error) {
	ln, err := s.d.Listen(name)
	if err != nil {
		return nil, fmt.Errorf("demo: listen for %s: %w", name, err)
	}
	return ln, nil
}

func (s *System) startOrigin() error {
	ocfg := origin.DefaultConfig()
	ocfg.Root = s.cfg.OriginRoot
	// The origin checks tokens and appliance credentials with the public
	// keys, so only players and registered appliances fetch from it.
	o, err := origin.New(ocfg, origin.Deps{AdminToken: s.d.Token, Keys: s.d.Keys.Public(), Log: s.d.Log})
	if err != nil {
		return err
	}
	ln, err := s.listen("origin")
	if err != nil {
		o.Close()
		return err
	}
	var h http.Handler = o
	if s.d.WrapOrigin != nil {
		h = s.d.WrapOrigin(o)
	}
	s.OriginURL = "http://" + ln.Addr().String()
	s.run("origin", func(ctx context.Context) error {
		defer o.Close()
		return origin.Serve(ctx, ln, h)
	})
	return nil
}

func (s *System) startControlPlane() error {
	ln, err := s.listen("controlplane")
	if err != nil {
		return err
	}
	rl, err := s.listen("raft")
	if err != nil {
		ln.Close()
		return err
	}
	raftAddr := rl.Addr().String()
	rl.Close() // raft opens it itself
	if s.API, err = client.New(client.Config{URLs: []string{"http://" + ln.Addr().String()}, Timeout: 30 * time.Second},
		client.Deps{Token: s.d.Token, HTTP: s.d.Client, Log: s.d.Log}); err != nil {
		ln.Close()
		return err
	}
	cfg := controlplane.Config{
		ID: "demo", DataDir: filepath.Join(s.cfg.Dir, "controlplane"), HTTP: ln.Addr().String(), RaftAddr: raftAddr,
		Bootstrap: true, Origin: s.OriginURL,
	}
	if s.cfg.ControlPlane != nil {
		s.cfg.ControlPlane(&cfg)
	}
	cp, err := controlplane.New(cfg, controlplane.Deps{AdminToken: s.d.Token, Keys: s.d.Keys, Log: s.d.Log, Listener: ln})
	if err != nil {
		ln.Close()
		return err
	}
	s.ControlPlaneURL = "http://" + ln.Addr().String()
	s.run("control plane", cp.Run)
	return s.WaitFor(s.ctx, "a raft leader", time.Minute, func() bool {
		st, err := s.API.Cluster(s.ctx)
		return err == nil && st.Leader != ""
	})
}

// StartAppliances starts the flash and the storage appliance.
func (s *System) StartAppliances() error {
	specs := []struct {
		id, profile string
		mem, disk   int64
	}{{"flash1", fillcast.ProfileFlash, s.cfg.FlashMem, s.cfg.FlashDisk}, {"storage1", fillcast.ProfileStorage, s.cfg.StorageMem, s.cfg.StorageDisk}}
	lns := make([]net.Listener, 0, len(specs))
	closeRest := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, sp := range specs {
		ln, err := s.listen(sp.id)
		if err != nil {
			closeRest()
			return err
		}
		lns = append(lns, ln)
		s.Appliances[sp.id] = "http://" + ln.Addr().String()
	}
	for _, sp := range specs {
		cfg := appliance.DefaultConfig()
		cfg.ID, cfg.Site, cfg.Profile, cfg.HTTP = sp.id, s.cfg.Site, sp.profile, lns[0].Addr().String()
		cfg.Cache.Dir, cfg.Cache.MemBytes, cfg.Cache.DiskBytes = filepath.Join(s.cfg.Dir, sp.id), sp.mem, sp.disk
		cfg.ControlPlanes = []string{s.ControlPlaneURL}
		// Tier fill: the other appliance first, then the origin.
		for _, other := range specs {
			if other.id != sp.id {
				cfg.Upstream.URLs = append(cfg.Upstream.URLs, s.Appliances[other.id])
			}
		}
		cfg.Upstream.URLs = append(cfg.Upstream.URLs, s.OriginURL)
		if s.cfg.Appliance != nil {
			s.cfg.Appliance(&cfg)
		}
		// An operator registers the appliance, with the URL it will
		// advertise, and hands it the credential answered once.
		var reg api.Registration
		if err := s.API.Do(s.ctx, http.MethodPut, "/v1/appliances/"+sp.id,
			api.Registration{Site: cfg.Site, Profile: cfg.Profile, URLs: []string{s.Appliances[sp.id]}}, &reg); err != nil {
			closeRest()
			return fmt.Errorf("demo: register %s: %w", sp.id, err)
		}
		// Appliances verify playback tokens; they get the public keys only.
		a, err := appliance.New(cfg, appliance.Deps{Keys: s.d.Keys.Public(), Credential: reg.Credential, AdminToken: s.d.Token, Log: s.d.Log})
		if err != nil {
			closeRest()
			return err
		}
		ln := lns[0]
		lns = lns[1:]
		if s.d.WrapListener != nil {
			ln = s.d.WrapListener(sp.id, ln)
		}
		s.run(sp.id, func(ctx context.Context) error { return a.Serve(ctx, ln) })
	}
	return nil
}

// WaitFor polls cond until it holds, ctx ends or timeout passes.
func (s *System) WaitFor(ctx context.Context, what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: gave up waiting for %s after %v", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
