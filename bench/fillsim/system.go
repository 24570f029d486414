package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/appliance"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/controlplane/planner"
	"github.com/fillcast/fillcast/controlplane/ratelimit"
	"github.com/fillcast/fillcast/demo"
)

// setup is what one run of the simulation is built from.
type setup struct {
	dir        string // this run's data (control plane, caches)
	originRoot string // the packaged titles, shared by the runs
	keys       *auth.Keys
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

// system is one running simulation: demo.System (a counting origin, a
// control-plane node and a flash and a storage appliance, on loopback
// sockets) with the simulated clock.
type system struct {
	setup
	*demo.System
	client *http.Client
	// viewer calls the control plane as the simulation's one viewer
	// account: playback needs a viewer's session, and the admin token
	// is refused on it.
	viewer *client.Client
	// stream is the viewer's stream lease, taken by the first playback
	// (startAppliances) and set before the players start. Every
	// simulated player passes it, so that they all play on one screen of
	// the one account instead of each signing an account in: a shortcut
	// (a deployment's players each hold a lease of their own account)
	// that keeps the plan's screen limit out of the way and costs a
	// raft write only when a playback moves the lease to another title.
	stream string
}

// viewerPlan is the simulation viewer's plan: every resolution, the most
// screens a plan may have.
var viewerPlan = accounts.Plan{ID: "fillsim", Name: "Fill simulation", MaxHeight: 4320, MaxStreams: 16, Downloads: true,
	Price: accounts.Money{Amount: 0, Currency: "EUR"}, Period: accounts.PeriodMonth}

// start brings everything up and registers the site and the titles
// released before the simulation starts.
func start(ctx context.Context, s setup, titles []fillcast.Title) (*system, error) {
	sys := &system{setup: s,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}}
	ds, err := demo.StartSystem(ctx, demo.SystemConfig{
		Dir: s.dir, OriginRoot: s.originRoot, Site: site.ID,
		FlashDisk: s.flashBytes, StorageDisk: s.storeBytes, FlashMem: s.memBytes, StorageMem: s.memBytes,
		ControlPlane: func(c *controlplane.Config) {
			c.HeartbeatTimeout, c.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
			// The simulation's one operator registers the whole catalog at
			// once, and its one viewer account stands for every player:
			// neither is the one principal's traffic the limits are for.
			unlimited := ratelimit.Limit{PerSecond: -1}
			c.API.RateLimits.Classes = map[ratelimit.Class]ratelimit.Limit{ratelimit.ClassAPIKey: unlimited, ratelimit.ClassViewer: unlimited}
			c.Planner = planner.Config{
				Every: s.planEvery, Now: s.clock.Now, Off: !s.fills,
				// An appliance stays planned for a simulated day after its
				// last heartbeat; heartbeats come every beatEvery of wall time.
				LiveFor: 24 * time.Hour,
			}
		},
		Appliance: func(c *appliance.Config) {
			c.HeartbeatInterval, c.FillPoll, c.FillRateBits, c.Now = s.beatEvery, s.fillPoll, s.fillRate, s.clock.Now
		},
	}, demo.SystemDeps{
		Keys: s.keys, Token: s.token, Client: sys.client, Log: s.log,
		WrapOrigin: func(h http.Handler) http.Handler { return newOriginCounter(h, s.clock, s.ledger) },
	})
	if err != nil {
		return nil, err
	}
	sys.System = ds
	if err := sys.configure(ctx, titles); err != nil {
		sys.Stop()
		return nil, err
	}
	if err := sys.signIn(ctx); err != nil {
		sys.Stop()
		return nil, err
	}
	if err := sys.startAppliances(ctx); err != nil {
		sys.Stop()
		return nil, err
	}
	return sys, nil
}

// Stop stops every part and returns what failed while they ran.
func (sys *system) Stop() error {
	err := sys.System.Stop()
	if sys.viewer != nil {
		sys.viewer.Close()
	}
	sys.client.CloseIdleConnections()
	return err
}

// signIn puts the viewer's plan (admin token), signs an account up and
// in, as the sign-up page does, and makes sys.viewer call with the
// session.
func (sys *system) signIn(ctx context.Context) error {
	if err := sys.API.Do(ctx, http.MethodPut, "/v1/plans/"+viewerPlan.ID, viewerPlan, nil); err != nil {
		return fmt.Errorf("fillsim: put plan: %w", err)
	}
	anon, err := client.New(client.Config{URLs: []string{sys.ControlPlaneURL}}, client.Deps{HTTP: sys.client})
	if err != nil {
		return err
	}
	defer anon.Close()
	account := map[string]string{"email": "viewer@fillsim.example", "password": "fill the caches at night", "plan": viewerPlan.ID}
	if err := anon.Do(ctx, http.MethodPost, "/v1/accounts", account, nil); err != nil {
		return fmt.Errorf("fillsim: sign up: %w", err)
	}
	var sess struct {
		Token string `json:"token"`
	}
	if err := anon.Do(ctx, http.MethodPost, "/v1/sessions", map[string]string{"email": account["email"], "password": account["password"]}, &sess); err != nil {
		return fmt.Errorf("fillsim: sign in: %w", err)
	}
	sys.viewer, err = client.New(client.Config{URLs: []string{sys.ControlPlaneURL}}, client.Deps{Token: sess.Token, HTTP: sys.client})
	return err
}

// configure puts the sites and registers the titles out by the start.
func (sys *system) configure(ctx context.Context, titles []fillcast.Title) error {
	for _, s := range []fillcast.Site{parentSite, site} {
		if err := sys.API.Do(ctx, http.MethodPut, "/v1/sites/"+s.ID, s, nil); err != nil {
			return fmt.Errorf("fillsim: put site %s: %w", s.ID, err)
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
	if err := sys.API.Do(ctx, http.MethodPost, "/v1/titles", t, nil); err != nil {
		return fmt.Errorf("fillsim: register %s: %w", t.ID, err)
	}
	return nil
}

// startAppliances starts the flash and the storage appliance and waits
// until steering sends players to both.
func (sys *system) startAppliances(ctx context.Context) error {
	if err := sys.StartAppliances(); err != nil {
		return err
	}
	return sys.WaitFor(ctx, "steering to know both appliances", time.Minute, func() bool {
		pb, err := sys.viewer.Playback(ctx, "t00000", "", sys.stream) // not steered yet: asked again
		if err == nil {
			sys.stream = pb.StreamID
		}
		n := 0
		for _, u := range pb.URLs {
			for _, base := range sys.Appliances {
				if strings.HasPrefix(u, base+"/") {
					n++
				}
			}
		}
		return n == len(sys.Appliances)
	})
}

// status reads an appliance's /v1/status.
func (sys *system) status(ctx context.Context, id string) (appliance.Status, error) {
	var st appliance.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sys.Appliances[id]+"/v1/status", nil)
	if err != nil {
		return st, fmt.Errorf("fillsim: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+sys.setup.token) // the demo's appliances take its admin token

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
