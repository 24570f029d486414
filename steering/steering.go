// Package steering decides where a player fetches a title from. It is the
// pure library every control-plane node calls for GET /v1/playback and
// GET /v1/steering: it does no I/O, and a decision takes no lock and
// allocates nothing.
//
// Steering has two tiers (docs/design.md §3.4):
//
//  1. Site: the client address is matched against every site's announced
//     prefixes (longest prefix wins, package prefix). The answer walks
//     from that site to its parent (normally the region's IX site) and
//     ends at the origin.
//  2. Appliance: inside a site, consistent hashing with bounded loads
//     (Mirrokni, Thorup and Zadimoghaddam 2016, as Vimeo runs it in front
//     of its video caches). Each title has its own preference order over
//     the site's appliances (weighted rendezvous hashing, package
//     rendezvous), so a title keeps landing on the same few caches; the
//     first appliance in that order whose load is under (1+ε) times its
//     capacity-weighted share of the site's load takes the player, so a hot
//     title spills to a second appliance instead of melting one. Load is
//     what the appliance last reported plus the players this node sent it
//     recently (a counter that decays with a half-life), and only healthy
//     appliances (not draining, heard from recently) that hold or are
//     planned to hold the title take part.
//
// A Steerer is created once per control-plane node. The control plane
// builds an immutable Fleet from its sites and the latest heartbeats with
// Steerer.Build (or Steerer.Update when only appliances changed), publishes
// it with an atomic.Pointer, and answers each request with Fleet.Steer,
// which takes no locks and appends to a caller-owned slice. Package
// contentsteering turns the ranked answer into an HLS/DASH Content
// Steering manifest.
package steering

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
)

// Config tunes steering. The zero value of every field means its default,
// as DefaultConfig spells out.
type Config struct {
	// Epsilon is the slack of the load bound: an appliance takes a new
	// player only while its load is under (1+Epsilon) times its
	// capacity-weighted share of the load of the eligible appliances in
	// its site (counting the new player). Smaller is more even, larger
	// keeps more titles on their first-choice cache. Zero means 0.25.
	Epsilon float64

	// StaleAfter leaves out an appliance whose last heartbeat is older
	// than this, so a silent appliance stops getting players even if no
	// new Fleet is built. Zero means 6s: three missed 2 s heartbeats.
	StaleAfter time.Duration

	// RecentHalfLife is how fast this node forgets the players it sent to
	// an appliance. Those players show up in the appliance's own reported
	// load a heartbeat or two later; until then the local count keeps a
	// burst of new players from all landing on one appliance. Zero means
	// 5s.
	RecentHalfLife time.Duration

	// Origin is the base URL of the origin ("http://origin:8080"), the
	// last entry of every answer. Empty leaves the origin out.
	Origin string
}

// DefaultConfig returns the configuration that the zero Config stands for.
func DefaultConfig() Config {
	return Config{
		Epsilon:        0.25,
		StaleAfter:     6 * time.Second,
		RecentHalfLife: 5 * time.Second,
	}
}

// withDefaults replaces zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Epsilon == 0 {
		c.Epsilon = d.Epsilon
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = d.StaleAfter
	}
	if c.RecentHalfLife == 0 {
		c.RecentHalfLife = d.RecentHalfLife
	}
	return c
}

// Validate reports the first field that cannot work, saying what to use
// instead. Zero fields are valid: they mean the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	if math.IsNaN(c.Epsilon) || c.Epsilon <= 0 || c.Epsilon > 10 {
		return fillcast.ConfigErrorf("steering", "Epsilon", "%v: want a load slack in (0, 10], such as 0.25", c.Epsilon)
	}
	if c.StaleAfter < 0 {
		return fillcast.ConfigErrorf("steering", "StaleAfter", "%v: want a positive duration, such as 6s", c.StaleAfter)
	}
	if c.RecentHalfLife < time.Millisecond {
		return fillcast.ConfigErrorf("steering", "RecentHalfLife", "%v: want at least 1ms, such as 5s", c.RecentHalfLife)
	}
	if c.RecentHalfLife > 64*c.StaleAfter {
		return fillcast.ConfigErrorf("steering", "RecentHalfLife", "%v is far longer than StaleAfter %v: local counts would outlive the heartbeats that replace them", c.RecentHalfLife, c.StaleAfter)
	}
	if c.Origin != "" {
		if err := checkBaseURL(c.Origin); err != nil {
			return fillcast.ConfigErrorf("steering", "Origin", "%v", err)
		}
	}
	return nil
}

// checkBaseURL accepts an absolute http(s) URL with a host and nothing
// after the path, the form appliance and origin base URLs take.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q: want an absolute http or https URL such as http://host:8080", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q: want a base URL without user, query or fragment", s)
	}
	return nil
}

// Steerer holds what outlives any one Fleet on a control-plane node: the
// configuration, the clock, and this node's recent-assignment counters.
// It is safe for concurrent use.
type Steerer struct {
	cfg     Config
	now     func() time.Time
	staleNS int64
	recent  decay

	mu       sync.Mutex // guards counters; held only while building
	counters map[string]*counter
}

// New returns a Steerer. now is the clock (nil means time.Now); tests pass
// a fake one.
func New(cfg Config, now func() time.Time) (*Steerer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if now == nil {
		now = time.Now
	}
	cfg.Origin = strings.TrimRight(cfg.Origin, "/")
	return &Steerer{
		cfg:      cfg,
		now:      now,
		staleNS:  int64(cfg.StaleAfter),
		recent:   newDecay(now(), cfg.RecentHalfLife),
		counters: make(map[string]*counter),
	}, nil
}

// Config returns the configuration in force, defaults filled in.
func (s *Steerer) Config() Config { return s.cfg }

// counterFor returns the appliance's recent-assignment counter, creating
// it on first sight. Callers hold s.mu.
func (s *Steerer) counterFor(id string) *counter {
	c := s.counters[id]
	if c == nil {
		c = new(counter)
		s.counters[id] = c
	}
	return c
}

// Recent returns how many players this node has sent to the appliance
// lately, decayed to now: the local part of the load steering uses.
func (s *Steerer) Recent(id string) float64 {
	s.mu.Lock()
	c := s.counters[id]
	s.mu.Unlock()
	if c == nil {
		return 0
	}
	return float64(c.value(&s.recent, s.recent.tick(s.now())))
}
