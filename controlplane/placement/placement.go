// Package placement decides which titles each appliance of a site should
// hold: the second step of off-peak fills (issue 6), between the
// popularity forecast (package controlplane/popularity) and the fill
// manifests the leader writes to the replicated state. It is a pure,
// deterministic function of its input; the leader calls it on a schedule
// and whenever the site's fleet changes.
//
// Storage appliances together hold the whole catalog. Each title's
// first copy goes to the first storage appliance, in the title's weighted
// rendezvous order (package steering/rendezvous, the order steering walks),
// with room for it; that choice does not depend on popularity, so a
// forecast never moves it. A title drawing a large share of the site's
// demand (forecast views × size) gets one more copy for every
// Config.CopyDemand of that share, on the next appliances of its order,
// so that when steering spills a hot title past its first choice the next
// appliance already holds it.
//
// Flash appliances hold the most popular titles that fit: titles are
// taken by forecast views (bytes served per byte stored, the value
// density of a byte of cache) while the flash appliances have room, then
// spread by consistent hashing with bounded loads: each copy goes to the
// first appliance in the title's rendezvous order whose planned bytes stay
// under (1+Config.Epsilon) times its weighted share of all the planned
// popular bytes. Popular titles get copies on flash by the same rule as on
// storage.
//
// Churn is kept small on purpose: a flash title keeps the appliances it
// had in the previous plan while it is still planned and they have room
// under the bound, and only titles new to the flash set, or whose
// appliance left, are placed afresh. Storage placement is the rendezvous
// order itself, which already moves only what a fleet change forces.
//
// Weights are the rendezvous weights steering uses for the same
// appliances (zero means 1, as in steering), so placement and steering
// agree on every title's order.
package placement

import (
	"errors"
	"fmt"
	"math"

	"github.com/fillcast/fillcast"
)

// ErrConfig is wrapped by the errors of Config.Validate.
var ErrConfig = errors.New("placement: bad config")

// ErrBadInput is wrapped by the errors Plan returns for input it cannot
// place: duplicate ids, unknown profiles, sizes or capacities that are not
// positive, scores that are not finite.
var ErrBadInput = errors.New("placement: bad input")

// Config tunes a Planner. The zero value of every field means its
// default, as DefaultConfig spells out.
type Config struct {
	// Epsilon is the slack of the flash load bound: no flash appliance is
	// planned more than (1+Epsilon) times its weighted share of the
	// popular bytes. Zero means 0.25, steering's default.
	Epsilon float64

	// CopyDemand is the share of the site's demand one copy of a title
	// is planned to serve: a title drawing a share s of the demand gets
	// ceil(s/CopyDemand) copies on each tier (at least one on storage).
	// Zero means 0.01.
	CopyDemand float64

	// MaxCopies caps the copies of a title on each tier. Zero means no
	// cap but the number of appliances of the tier.
	MaxCopies int

	// StorageFill is the share of a storage appliance's capacity that
	// extra copies may fill; first copies may use all of it. Zero means
	// 0.9.
	StorageFill float64

	// FlashFill is the share of a flash appliance's capacity the plan
	// fills, leaving the rest to pull-through caching of what was not
	// planned. Zero means 0.9.
	FlashFill float64
}

// DefaultConfig returns the configuration that the zero Config stands for.
func DefaultConfig() Config {
	return Config{Epsilon: 0.25, CopyDemand: 0.01, StorageFill: 0.9, FlashFill: 0.9}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Epsilon == 0 {
		c.Epsilon = d.Epsilon
	}
	if c.CopyDemand == 0 {
		c.CopyDemand = d.CopyDemand
	}
	if c.StorageFill == 0 {
		c.StorageFill = d.StorageFill
	}
	if c.FlashFill == 0 {
		c.FlashFill = d.FlashFill
	}
	return c
}

// Validate reports the first field that cannot work, saying what to use
// instead. Zero fields are valid: they mean the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case !finite(c.Epsilon) || c.Epsilon <= 0 || c.Epsilon > 10:
		return fmt.Errorf("%w: epsilon %v: want a load slack in (0, 10], such as 0.25", ErrConfig, c.Epsilon)
	case !finite(c.CopyDemand) || c.CopyDemand <= 0 || c.CopyDemand > 1:
		return fmt.Errorf("%w: copy demand %v: want a share of demand in (0, 1], such as 0.01", ErrConfig, c.CopyDemand)
	case c.MaxCopies < 0:
		return fmt.Errorf("%w: max copies %d: want 0 (no cap) or a positive count", ErrConfig, c.MaxCopies)
	case !finite(c.StorageFill) || c.StorageFill <= 0 || c.StorageFill > 1:
		return fmt.Errorf("%w: storage fill %v: want a share of capacity in (0, 1], such as 0.9", ErrConfig, c.StorageFill)
	case !finite(c.FlashFill) || c.FlashFill <= 0 || c.FlashFill > 1:
		return fmt.Errorf("%w: flash fill %v: want a share of capacity in (0, 1], such as 0.9", ErrConfig, c.FlashFill)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Appliance is one appliance of the site.
type Appliance struct {
	ID       string
	Profile  string  // fillcast.ProfileFlash or fillcast.ProfileStorage
	Capacity int64   // bytes of disk the plan may use; positive
	Weight   float64 // rendezvous weight, as given to steering; 0 means 1
}

// Title is one catalog title.
type Title struct {
	ID   string
	Size int64 // bytes of the whole packaged title; positive
}

// Input is what a site's plan is computed from.
type Input struct {
	Appliances []Appliance
	Catalog    []Title
	// Scores are the forecast views of titles (popularity.Forecast);
	// missing titles score 0, titles outside the catalog are ignored.
	Scores map[string]float64
}

// Planner computes plans. It holds only its configuration and is safe
// for concurrent use.
type Planner struct {
	cfg Config
}

// New returns a Planner.
func New(cfg Config) (*Planner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Planner{cfg: cfg.withDefaults()}, nil
}

// Config returns the configuration in force, defaults filled in.
func (p *Planner) Config() Config { return p.cfg }

// checkInput returns the first problem with in.
func checkInput(in Input) error {
	ids := make(map[string]bool, len(in.Appliances))
	for _, a := range in.Appliances {
		if a.ID == "" || ids[a.ID] {
			return fmt.Errorf("%w: appliance id %q empty or repeated", ErrBadInput, a.ID)
		}
		ids[a.ID] = true
		if a.Profile != fillcast.ProfileFlash && a.Profile != fillcast.ProfileStorage {
			return fmt.Errorf("%w: appliance %q: profile %q: want %q or %q", ErrBadInput, a.ID, a.Profile, fillcast.ProfileFlash, fillcast.ProfileStorage)
		}
		if a.Capacity <= 0 {
			return fmt.Errorf("%w: appliance %q: capacity %d: want a positive number of bytes", ErrBadInput, a.ID, a.Capacity)
		}
		if !finite(a.Weight) || a.Weight < 0 {
			return fmt.Errorf("%w: appliance %q: weight %v: want a positive weight, or 0 for 1", ErrBadInput, a.ID, a.Weight)
		}
	}
	titles := make(map[string]bool, len(in.Catalog))
	for _, t := range in.Catalog {
		if t.ID == "" || titles[t.ID] {
			return fmt.Errorf("%w: title id %q empty or repeated", ErrBadInput, t.ID)
		}
		titles[t.ID] = true
		if t.Size <= 0 {
			return fmt.Errorf("%w: title %q: size %d: want the positive byte size of its packaged files", ErrBadInput, t.ID, t.Size)
		}
	}
	for id, s := range in.Scores {
		if !finite(s) || s < 0 {
			return fmt.Errorf("%w: score of %q is %v: want a finite non-negative forecast", ErrBadInput, id, s)
		}
	}
	return nil
}
