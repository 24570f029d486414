package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance"
	"github.com/fillcast/fillcast/controlplane"
	"github.com/fillcast/fillcast/controlplane/planner"
	"github.com/fillcast/fillcast/origin"
	"github.com/fillcast/fillcast/steering/urlsign"
)

// setup is what one run of the simulation is built from.
type setup struct {
	dir        string // this run's data (control plane, caches)
	originRoot string // the packaged titles, shared by the runs
	keys       *urlsign.Keys
	token      string
	clock      *simClock
	ledger     *ledger // counts by simulated hour
	fills      bool    // plan fills (false: pure pull-through)
	flashBytes int64
	storeBytes int64
	memBytes   int64   // memory tier of each appliance
	fillRate   float64 // bits per wall second
	planEvery  time.Duration
	beatEvery  time.Duration
	fillPoll   time.Duration
	log        *slog.Logger
}

// site is the one ISP site of the simulation: it covers loopback, where
// the simulated players are, and fills from 02:00 to 14:00 UTC.
var site = fillcast.Site{ID: "sim-isp", Kind: fillcast.SiteISP, Region: "sim", Prefixes: []string{"127.0.0.0/8"},
	Parent: "sim-ix", FillWindow: "02:00-14:00", Timezone: "UTC"}

var parentSite = fillcast.Site{ID: "sim-ix", Kind: fillcast.SiteIX, Region: "sim", Prefixes: []string{"198.51.100.0/24"}}

// system is one running simulation: a counting origin, a control-plane
// node and a flash and a storage appliance, on loopback sockets.
type system struct {
	setup
	origin     *originCounter
	cpURL      string
	originURL  string
	appliances map[string]string // URL -> id
	statusURLs map[string]string // id -> URL
	client     *http.Client

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// start brings everything up and registers the site and the titles
// released before the simulation starts.
func start(ctx context.Context, s setup, titles []fillcast.Title) (*system, error) {
	ctx, cancel := context.WithCancel(ctx)
	sys := &system{setup: s, cancel: cancel, appliances: map[string]string{}, statusURLs: map[string]string{},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}}
	if err := sys.startOrigin(ctx); err != nil {
		sys.Stop()
		return nil, err
	}
	if err := sys.startControlPlane(ctx); err != nil {
		sys.Stop()
		return nil, err
	}
	if err := sys.configure(ctx, titles); err != nil {
		sys.Stop()
		return nil, err
	}
	if err := sys.startAppliances(ctx); err != nil {
		sys.Stop()
		return nil, err
	}
	return sys, nil
}

// run starts f in a goroutine the system owns; its error, unless the
// system is stopping, is kept for Stop.
func (sys *system) run(ctx context.Context, name string, f func(context.Context) error) {
	sys.wg.Go(func() {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			sys.mu.Lock()
			sys.errs = append(sys.errs, fmt.Errorf("fillsim: %s: %w", name, err))
			sys.mu.Unlock()
		}
	})
}

// Stop stops every part and returns what failed while they ran.
func (sys *system) Stop() error {
	sys.cancel()
	sys.wg.Wait()
	sys.client.CloseIdleConnections()
	sys.mu.Lock()
	defer sys.mu.Unlock()
	return errors.Join(sys.errs...)
}

func listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fillsim: listen: %w", err)
	}
	return ln, nil
}

func (sys *system) startOrigin(ctx context.Context) error {
	ocfg := origin.DefaultConfig()
	ocfg.Root, ocfg.AdminToken = sys.originRoot, sys.token
	o, err := origin.New(ocfg, sys.log)
	if err != nil {
		return err
	}
	ln, err := listen()
	if err != nil {
		o.Close()
		return err
	}
	sys.origin = newOriginCounter(o, sys.clock, sys.ledger)
	sys.originURL = "http://" + ln.Addr().String()
	sys.run(ctx, "origin", func(ctx context.Context) error {
		defer o.Close()
		return origin.Serve(ctx, ln, sys.origin)
	})
	return nil
}

func (sys *system) startControlPlane(ctx context.Context) error {
	ln, err := listen()
	if err != nil {
		return err
	}
	rl, err := listen()
	if err != nil {
		ln.Close()
		return err
	}
	raftAddr := rl.Addr().String()
	rl.Close() // raft opens it itself
	sys.cpURL = "http://" + ln.Addr().String()
	cp, err := controlplane.New(controlplane.Config{
		ID: "sim", DataDir: filepath.Join(sys.dir, "controlplane"), HTTP: ln.Addr().String(), RaftAddr: raftAddr,
		Bootstrap: true, AdminToken: sys.token, Keys: sys.keys, Origin: sys.originURL,
		HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		Planner: planner.Config{
			Every: sys.planEvery, Now: sys.clock.Now, Off: !sys.fills,
			// An appliance stays planned for a simulated day after its
			// last heartbeat; heartbeats come every beatEvery of wall time.
			LiveFor: 24 * time.Hour,
		},
	}, sys.log)
	if err != nil {
		ln.Close()
		return err
	}
	sys.run(ctx, "control plane", func(ctx context.Context) error { return cp.Serve(ctx, ln) })
	return sys.waitFor(ctx, "a raft leader", func() bool {
		code, b := sys.api(ctx, http.MethodGet, "/v1/cluster", nil)
		return code == http.StatusOK && bytes.Contains(b, []byte(`"leader"`)) && !bytes.Contains(b, []byte(`"leader":""`))
	})
}

// configure puts the sites and registers the titles out by the start.
func (sys *system) configure(ctx context.Context, titles []fillcast.Title) error {
	for _, s := range []fillcast.Site{parentSite, site} {
		if code, b := sys.api(ctx, http.MethodPut, "/v1/sites/"+s.ID, s); code != http.StatusOK {
			return fmt.Errorf("fillsim: put site %s: %d %s", s.ID, code, b)
		}
	}
	next := make(chan *fillcast.Title)
	errs := make([]error, 8) // one per worker, read after wg.Wait
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for t := range next {
				if err := sys.register(ctx, t); err != nil && errs[w] == nil {
					errs[w] = err
				}
			}
		})
	}
	for i := range titles {
		if titles[i].Release == nil {
			next <- &titles[i]
		}
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// register adds a ready title to the catalog.
func (sys *system) register(ctx context.Context, t *fillcast.Title) error {
	if code, b := sys.api(ctx, http.MethodPost, "/v1/titles", t); code != http.StatusCreated {
		return fmt.Errorf("fillsim: register %s: %d %s", t.ID, code, b)
	}
	return nil
}

// startAppliances starts the flash and the storage appliance, each with
// the other as its tier-fill peer before the origin, and waits until
// steering sends players to both.
func (sys *system) startAppliances(ctx context.Context) error {
	specs := []struct {
		id, profile string
		disk        int64
	}{{"flash1", fillcast.ProfileFlash, sys.flashBytes}, {"storage1", fillcast.ProfileStorage, sys.storeBytes}}
	lns := make([]net.Listener, len(specs))
	for i, sp := range specs {
		ln, err := listen()
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return err
		}
		lns[i] = ln
		u := "http://" + ln.Addr().String()
		sys.appliances[u], sys.statusURLs[sp.id] = sp.id, u
	}
	for i, sp := range specs {
		cfg := appliance.DefaultConfig()
		cfg.ID, cfg.Site, cfg.Profile, cfg.HTTP, cfg.Keys = sp.id, site.ID, sp.profile, lns[i].Addr().String(), sys.keys
		cfg.Cache.Dir, cfg.Cache.MemBytes, cfg.Cache.DiskBytes = filepath.Join(sys.dir, sp.id), sys.memBytes, sp.disk
		cfg.Server.AdminToken, cfg.ControlPlanes = sys.token, []string{sys.cpURL}
		cfg.HeartbeatInterval, cfg.FillPoll, cfg.FillRateBits, cfg.Now = sys.beatEvery, sys.fillPoll, sys.fillRate, sys.clock.Now
		for _, other := range specs {
			if other.id != sp.id {
				cfg.Upstream.URLs = append(cfg.Upstream.URLs, sys.statusURLs[other.id])
			}
		}
		cfg.Upstream.URLs = append(cfg.Upstream.URLs, sys.originURL)
		a, err := appliance.New(cfg, sys.log)
		if err != nil {
			for _, l := range lns[i:] {
				l.Close()
			}
			return err
		}
		ln := lns[i]
		sys.run(ctx, sp.id, func(ctx context.Context) error { return a.Serve(ctx, ln) })
	}
	return sys.waitFor(ctx, "steering to know both appliances", func() bool {
		var pb struct {
			URLs []string `json:"urls"`
		}
		_, b := sys.api(ctx, http.MethodGet, "/v1/playback/t00000", nil)
		json.Unmarshal(b, &pb)
		n := 0
		for _, u := range pb.URLs {
			for base := range sys.appliances {
				if strings.HasPrefix(u, base+"/") {
					n++
				}
			}
		}
		return n == len(specs)
	})
}

// applianceStatus is the part of an appliance's /v1/status the bench reads.
type applianceStatus struct {
	ID   string `json:"id"`
	Disk struct {
		UsedBytes int64 `json:"used_bytes"`
	} `json:"disk"`
	Plan *struct {
		ManifestVersion    uint64 `json:"manifest_version"`
		PlannedBytes       int64  `json:"planned_bytes"`
		PresentBytes       int64  `json:"present_bytes"`
		FilledBytes        int64  `json:"filled_bytes"`
		OutsideWindowBytes int64  `json:"filled_outside_window_bytes"`
		Failures           int64  `json:"failures"`
	} `json:"plan"`
}

// status reads an appliance's /v1/status.
func (sys *system) status(ctx context.Context, id string) (applianceStatus, error) {
	var st applianceStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sys.statusURLs[id]+"/v1/status", nil)
	if err != nil {
		return st, fmt.Errorf("fillsim: %w", err)
	}
	resp, err := sys.client.Do(req)
	if err != nil {
		return st, fmt.Errorf("fillsim: status of %s: %w", id, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("fillsim: status of %s: %w", id, err)
	}
	if st.Plan == nil {
		return st, fmt.Errorf("fillsim: status of %s has no fill plan section", id)
	}
	return st, nil
}

// api calls the control plane with the admin token.
func (sys *system) api(ctx context.Context, method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, sys.cpURL+path, rd)
	if err != nil {
		return 0, []byte(err.Error())
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+sys.token)
	resp, err := sys.client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b
}

// waitFor polls cond until it holds, ctx ends or a minute passes.
func (sys *system) waitFor(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("fillsim: gave up waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
