// Package planner runs off-peak fill planning on the control-plane
// leader: it folds the event stream (starts from play events, bytes from
// appliances' usage summaries) into the popularity tracker on every node, and on a schedule and whenever the fleet or the
// catalog changes it places each site's titles on its appliances and
// writes a new fill manifest for every appliance whose plan changed. The
// appliances fetch their manifests and fill inside their site's window.
package planner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/placement"
	"github.com/fillcast/fillcast/controlplane/popularity"
	"github.com/prometheus/client_golang/prometheus"
)

// Node is what the planner needs of the raft node.
type Node interface {
	IsLeader() bool
	Apply(ctx context.Context, cmd fsm.Command) error
}

// State reads the replicated state.
type State interface {
	Read(fn func(s *fsm.State))
}

// Config configures a Planner.
type Config struct {
	// Every is the planning period. Zero means 10 minutes.
	Every time.Duration
	// PeakHour is the local hour the forecast is made for (the evening
	// peak the fills prepare). Zero means 20.
	PeakHour int
	// LiveFor is how long after its last heartbeat an appliance still
	// gets a plan. Zero means 10 minutes: a short outage does not throw
	// its plan away.
	LiveFor time.Duration
	// Placement and Popularity tune the two steps.
	Placement  placement.Config
	Popularity popularity.Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SnapshotPath, when set, is the file the popularity tracker is saved
	// to (every SaveEvery, and when Run ends) and restored from by
	// Restore, so a restarted node forecasts from the viewing it had
	// already seen.
	// Empty keeps popularity in memory only.
	SnapshotPath string
	// SaveEvery is the period of those saves. Zero means 1 minute.
	SaveEvery time.Duration
	// Off turns fill planning off: the tracker still learns popularity,
	// but no manifest is written, so appliances only cache what players
	// pull through them (the baseline bench/fillsim compares against).
	Off bool
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.Every < 0:
		return fillcast.ConfigErrorf("planner", "Every", "%v is negative", c.Every)
	case c.PeakHour < 0 || c.PeakHour > 23:
		return fillcast.ConfigErrorf("planner", "PeakHour", "%d: want an hour from 0 to 23", c.PeakHour)
	case c.LiveFor < 0:
		return fillcast.ConfigErrorf("planner", "LiveFor", "%v is negative", c.LiveFor)
	case c.SaveEvery < 0:
		return fillcast.ConfigErrorf("planner", "SaveEvery", "%v is negative", c.SaveEvery)
	}
	if err := c.Placement.Validate(); err != nil {
		return fillcast.InField("Placement", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Every == 0 {
		c.Every = 10 * time.Minute
	}
	if c.PeakHour == 0 {
		c.PeakHour = 20
	}
	if c.LiveFor == 0 {
		c.LiveFor = 10 * time.Minute
	}
	if c.SaveEvery == 0 {
		c.SaveEvery = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// seen is what the planner remembers of an appliance's heartbeats.
type seen struct {
	site, profile string
	at            time.Time
}

// Planner owns the tracker and the planning loop.
type Planner struct {
	cfg     Config
	node    Node
	state   State
	log     *slog.Logger
	tracker *popularity.Tracker
	placer  *placement.Planner
	kick    chan struct{}
	// passes times PlanAll.
	passes prometheus.Histogram

	mu   sync.Mutex
	seen map[string]seen
}

// New returns a Planner with no history; Restore loads the saved one
// and Run starts its loop.
func New(cfg Config, node Node, state State, log *slog.Logger) (*Planner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tr, err := popularity.New(cfg.Popularity, cfg.Now)
	if err != nil {
		return nil, err
	}
	pl, err := placement.New(cfg.Placement)
	if err != nil {
		return nil, err
	}
	p := &Planner{cfg: cfg, node: node, state: state, log: log, tracker: tr, placer: pl,
		kick: make(chan struct{}, 1), seen: map[string]seen{},
		passes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fillcast_planner_pass_seconds",
			Help:    "How long one full fill-planning pass takes on the leader: every site placed and the manifests that changed written.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to about 30 s
		})}
	return p, nil
}

// Collector returns the planner's metrics: fillcast_planner_pass_seconds.
func (p *Planner) Collector() prometheus.Collector { return p.passes }

// Tracker returns the popularity tracker (for status pages and tests).
func (p *Planner) Tracker() *popularity.Tracker { return p.tracker }

// Kick asks for a plan soon (the fleet or the catalog changed).
func (p *Planner) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Observe takes a heartbeat: the appliance is alive. It is timed by the
// planner's clock (Config.Now), not the fleet's b.Seen: liveness and
// decay then share one clock however a simulation compresses it, while
// the fleet judges staleness for steering by the wall clock. What the
// appliance served comes through the event stream (Handle).
func (p *Planner) Observe(b fleet.Beat) {
	now := p.cfg.Now()
	p.mu.Lock()
	_, known := p.seen[b.ID]
	p.seen[b.ID] = seen{site: b.Beat.Site, profile: b.Beat.Profile, at: now}
	p.mu.Unlock()
	if !known {
		p.Kick()
	}
}

// regionOf returns the region of a site, or "" for an unknown site.
func (p *Planner) regionOf(site string) string {
	var region string
	p.state.Read(func(s *fsm.State) {
		if st := s.Sites[site]; st != nil {
			region = st.Region
		}
	})
	return region
}

// CatalogChanged keeps the tracker's titles (sizes, release dates) in
// step with the replicated catalog.
func (p *Planner) CatalogChanged(c fsm.Command) {
	switch c.Op {
	case fsm.OpPutTitle, fsm.OpCreateTitle:
		if !p.track(c.Title) {
			p.tracker.RemoveTitle(c.Title.ID)
		}
		p.Kick()
	case fsm.OpDeleteTitle:
		p.tracker.RemoveTitle(c.ID)
		p.Kick()
	case fsm.OpRestore:
		p.state.Read(func(s *fsm.State) {
			for _, t := range s.Titles {
				p.track(t)
			}
		})
		p.Kick()
	}
}

// track registers a ready title with its size and release time, and
// reports whether it did.
func (p *Planner) track(t *fillcast.Title) bool {
	size := titleSize(t)
	if t.Status != fillcast.StatusReady || size <= 0 {
		return false
	}
	var release time.Time
	if t.Release != nil {
		release = *t.Release
	}
	if err := p.tracker.AddTitle(popularity.Title{ID: t.ID, Size: size, Release: release}); err != nil {
		p.log.Warn("planner: title not tracked", "title", t.ID, "err", err)
		return false
	}
	return true
}

// titleSize is the bytes of a title's files, from its list's summary:
// the catalog keeps no files.
func titleSize(t *fillcast.Title) int64 { return t.Bytes }

// Run plans every Every and on kicks, while this node leads, until ctx
// is done (with Config.Off, it does not plan). Plans are written by the
// leader only, so two nodes never race to version the same manifest.
// Every node saves its popularity every SaveEvery and when Run ends.
func (p *Planner) Run(ctx context.Context) error {
	defer func() {
		if err := p.save(); err != nil {
			p.log.Warn("planner: popularity not saved", "err", err)
		}
	}()
	t := time.NewTicker(p.cfg.Every)
	defer t.Stop()
	saves := time.NewTicker(p.cfg.SaveEvery)
	defer saves.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-saves.C:
			if err := p.save(); err != nil {
				p.log.Warn("planner: popularity not saved", "err", err)
			}
			continue
		case <-t.C:
		case <-p.kick:
		}
		if p.cfg.Off {
			continue
		}
		if !p.node.IsLeader() {
			continue
		}
		if err := p.PlanAll(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("planner: plan", "err", err)
		}
	}
}

// PlanAll plans every site and writes the manifests that changed.
func (p *Planner) PlanAll(ctx context.Context) error {
	start := time.Now()
	defer func() { p.passes.Observe(time.Since(start).Seconds()) }()
	var sites []*fillcast.Site
	p.state.Read(func(s *fsm.State) {
		for _, site := range s.Sites {
			sites = append(sites, site)
		}
	})
	sort.Slice(sites, func(i, j int) bool { return sites[i].ID < sites[j].ID })
	var errs []error
	for _, site := range sites {
		if err := p.planSite(ctx, site); err != nil {
			errs = append(errs, fmt.Errorf("planner: site %s: %w", site.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Planner) planSite(ctx context.Context, site *fillcast.Site) error {
	now := p.cfg.Now()
	in := placement.Input{}
	prev := &placement.Plan{Holds: map[string][]string{}}
	current := map[string]*fsm.Manifest{}
	p.mu.Lock()
	live := map[string]seen{}
	for id, s := range p.seen {
		if s.site == site.ID && now.Sub(s.at) < p.cfg.LiveFor {
			live[id] = s
		}
	}
	p.mu.Unlock()
	p.state.Read(func(s *fsm.State) {
		for id, sn := range live {
			ap := s.Appliances[id]
			if ap == nil || ap.CapacityBytes <= 0 {
				continue
			}
			in.Appliances = append(in.Appliances, placement.Appliance{ID: id, Profile: sn.profile, Capacity: ap.CapacityBytes})
			if m := s.Manifests[id]; m != nil {
				current[id] = m
				prev.Holds[id] = m.Titles
			}
		}
		for _, t := range s.Titles {
			if size := titleSize(t); t.Status == fillcast.StatusReady && size > 0 {
				in.Catalog = append(in.Catalog, placement.Title{ID: t.ID, Size: size})
			}
		}
	})
	if len(in.Appliances) == 0 {
		return nil
	}
	in.Scores = map[string]float64{}
	for _, sc := range p.tracker.Forecast(site.Region, p.nextPeak(site, now)) {
		in.Scores[sc.Title] = sc.Views
	}
	plan, err := p.placer.Plan(in, prev)
	if err != nil {
		return err
	}
	for _, a := range in.Appliances {
		titles := plan.Holds[a.ID]
		cur := current[a.ID]
		if cur != nil && slices.Equal(cur.Titles, titles) {
			continue
		}
		m := fsm.Manifest{Appliance: a.ID, Version: 1, Titles: titles, Updated: now.UTC()}
		if cur != nil {
			m.Version = cur.Version + 1
		}
		if err := p.node.Apply(ctx, fsm.Command{Op: fsm.OpPutManifest, Manifest: &m}); err != nil {
			return err
		}
		p.log.Info("planner: manifest", "appliance", a.ID, "version", m.Version, "titles", len(titles))
	}
	return nil
}

// nextPeak is the next PeakHour in the site's time zone.
func (p *Planner) nextPeak(site *fillcast.Site, now time.Time) time.Time {
	loc := time.UTC
	if site.Timezone != "" {
		if l, err := time.LoadLocation(site.Timezone); err == nil {
			loc = l
		}
	}
	local := now.In(loc)
	peak := time.Date(local.Year(), local.Month(), local.Day(), p.cfg.PeakHour, 0, 0, 0, loc)
	if !peak.After(local) {
		peak = peak.AddDate(0, 0, 1)
	}
	return peak
}
