// Package fleet is a control-plane node's view of the appliances: the
// registry from the replicated state plus the soft state of their latest
// heartbeats, published as an immutable steering.Fleet that every request
// reads without locking.
//
// Heartbeats are soft state and stay out of the raft log: an appliance
// posts to any node, and that node passes the heartbeat on to every other
// member, so every node (not only the leader) steers with data a few
// seconds old at most, and losing the leader does not stop steering.
package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/steering"
)

// PeerPath is where a node accepts heartbeats passed on by another node.
const PeerPath = "/v1/internal/heartbeat"

// Registry is what the fleet needs of the replicated state.
type Registry interface {
	Read(fn func(s *fsm.State))
}

// Config configures a Fleet. Zero values mean the defaults named.
type Config struct {
	// NodeID is this control-plane node. Required.
	NodeID string
	// BitsPerPlayer turns a reported bps into a player count for
	// steering's load bound. Zero means 4 Mbit/s.
	BitsPerPlayer float64
	// RebuildEvery bounds how often heartbeats rebuild the steering fleet.
	// Zero means 200 ms.
	RebuildEvery time.Duration
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	if c.NodeID == "" {
		return fillcast.ConfigErrorf("fleet", "NodeID", "required: this control-plane node's id")
	}
	if c.BitsPerPlayer < 0 {
		return fillcast.ConfigErrorf("fleet", "BitsPerPlayer", "%v is negative", c.BitsPerPlayer)
	}
	if c.RebuildEvery < 0 {
		return fillcast.ConfigErrorf("fleet", "RebuildEvery", "%v is negative", c.RebuildEvery)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.BitsPerPlayer == 0 {
		c.BitsPerPlayer = 4e6
	}
	if c.RebuildEvery == 0 {
		c.RebuildEvery = 200 * time.Millisecond
	}
	return c
}

// Deps are what a Fleet works with.
type Deps struct {
	// Registry is the replicated state. Required.
	Registry Registry
	// Steerer builds the steering snapshots. Required.
	Steerer *steering.Steerer
	// Observe, if set, sees every heartbeat this node receives
	// (popularity).
	Observe func(Beat)
	// Peers returns the other members' HTTP URLs; nil means none.
	Peers func() []string
	// NodeToken authenticates heartbeats passed between nodes:
	// auth.NodeToken of the admin key.
	NodeToken string
	// Client passes heartbeats on; nil means a client with a 2 s timeout.
	Client *http.Client
	// Log receives warnings; nil discards them.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Beat is an appliance's latest heartbeat and when it arrived.
type Beat struct {
	ID   string             `json:"id"`
	Beat fillcast.Heartbeat `json:"heartbeat"`
	Seen time.Time          `json:"seen"`
}

// Fleet holds the soft state and the published steering snapshot.
type Fleet struct {
	cfg     Config
	d       Deps
	log     *slog.Logger
	current atomic.Pointer[steering.Fleet]
	dirty   chan struct{} // a heartbeat arrived
	resites chan struct{} // sites or registry changed
	outbox  chan []byte   // heartbeats to pass on

	mu    sync.Mutex
	beats map[string]Beat
	// running is when Run started, in Unix ns (Fresh).
	running atomic.Int64

	// sets caches each flash appliance's planned titles by manifest
	// version; only rebuild touches it (New, then Run's loop).
	sets map[string]titleSet
}

// New returns a Fleet steering with the registry as it stands (nothing
// yet, at a node's start); Run keeps it current.
func New(cfg Config, d Deps) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Registry == nil || d.Steerer == nil {
		return nil, errors.New("fleet: Deps.Registry and Deps.Steerer are required")
	}
	if d.Peers == nil {
		d.Peers = func() []string { return nil }
	}
	if d.Client == nil {
		d.Client = &http.Client{Timeout: 2 * time.Second}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	f := &Fleet{
		cfg: cfg.withDefaults(), d: d, log: d.Log,
		dirty: make(chan struct{}, 1), resites: make(chan struct{}, 1), outbox: make(chan []byte, 256),
		beats: map[string]Beat{},
		sets:  map[string]titleSet{},
	}
	if err := f.rebuild(true); err != nil {
		f.log.Warn("fleet: initial build", "err", err)
	}
	return f, nil
}

// Run rebuilds the steering fleet as heartbeats and the registry change,
// and passes heartbeats on to the other nodes, until ctx is done.
func (f *Fleet) Run(ctx context.Context) error {
	f.running.Store(f.d.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Go(func() { f.rebuildLoop(ctx) })
	wg.Go(func() { f.forwardLoop(ctx) })
	wg.Wait()
	return nil
}

// Current returns the steering snapshot in force.
func (f *Fleet) Current() *steering.Fleet { return f.current.Load() }

// Steerer returns the node's steerer.
func (f *Fleet) Steerer() *steering.Steerer { return f.d.Steerer }

// RegistryChanged schedules a full rebuild (sites, registry or rules
// changed in the replicated state).
func (f *Fleet) RegistryChanged() { signal(f.resites) }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Heartbeat records a heartbeat. One received from an appliance
// (fromPeer false) is passed on to the other nodes.
func (f *Fleet) Heartbeat(id string, hb fillcast.Heartbeat, fromPeer bool) error {
	if err := validBeat(id, hb); err != nil {
		return err
	}
	return f.record(Beat{ID: id, Beat: hb, Seen: f.d.Now()}, fromPeer)
}

func validBeat(id string, hb fillcast.Heartbeat) error {
	if err := fillcast.ValidateTitleID(id); err != nil {
		return fmt.Errorf("fleet: %w: appliance id: %v", fsm.ErrInvalid, err)
	}
	if err := fsm.ValidateAppliance(&fsm.Appliance{ID: id, Site: hb.Site, Profile: hb.Profile, URL: hb.URL, CapacityBytes: hb.CapacityBytes}); err != nil {
		return err
	}
	if hb.Health != fillcast.HealthOK && hb.Health != fillcast.HealthDraining {
		return fmt.Errorf("fleet: %w: health %q: want ok or draining", fsm.ErrInvalid, hb.Health)
	}
	return nil
}

// record keeps b unless a newer heartbeat of the same appliance is
// already known (passed-on heartbeats can arrive out of order).
func (f *Fleet) record(b Beat, fromPeer bool) error {
	f.mu.Lock()
	if cur, ok := f.beats[b.ID]; ok && cur.Seen.After(b.Seen) {
		f.mu.Unlock()
		return nil
	}
	f.beats[b.ID] = b
	f.mu.Unlock()
	signal(f.dirty)
	if f.d.Observe != nil {
		f.d.Observe(b)
	}
	if !fromPeer {
		if body, err := json.Marshal(b); err == nil {
			select {
			case f.outbox <- body:
			default:
				f.log.Warn("fleet: forwarding queue full, dropping a heartbeat (the next one repairs it)")
			}
		}
	}
	return nil
}

// PeerHeartbeat records a heartbeat passed on by another node, keeping
// the time it was received there.
func (f *Fleet) PeerHeartbeat(b Beat) error {
	if err := validBeat(b.ID, b.Beat); err != nil {
		return err
	}
	if b.Seen.IsZero() || b.Seen.After(f.d.Now().Add(time.Minute)) {
		return fmt.Errorf("fleet: %w: seen %v: missing or in the future", fsm.ErrInvalid, b.Seen)
	}
	return f.record(b, true)
}

// Beats returns the latest heartbeats, by appliance id.
func (f *Fleet) Beats() []Beat {
	f.mu.Lock()
	out := make([]Beat, 0, len(f.beats))
	for _, b := range f.beats {
		out = append(out, b)
	}
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Beat returns the latest heartbeat of appliance id.
func (f *Fleet) Beat(id string) (Beat, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.beats[id]
	return b, ok
}

func (f *Fleet) rebuildLoop(ctx context.Context) {
	t := time.NewTicker(f.cfg.RebuildEvery)
	defer t.Stop()
	pending, full := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.dirty:
			pending = true
		case <-f.resites:
			pending, full = true, true
		case <-t.C:
			if pending {
				if err := f.rebuild(full); err != nil {
					f.log.Warn("fleet: rebuild", "err", err)
				}
				pending, full = false, false
			}
		}
	}
}

// rebuild publishes a new steering fleet from the registry and beats.
// Appliances that never sent a heartbeat are left out: nothing says they
// are alive; so are those not registered (revoked since their last beat)
// or whose beat contradicts their registration.
func (f *Fleet) rebuild(full bool) error {
	var sites []fillcast.Site
	knownSites := map[string]bool{}
	drained := map[string]bool{}
	registered := map[string]*fsm.Registration{}
	plans := map[string]*fsm.Manifest{}
	full = full || f.current.Load() == nil
	f.d.Registry.Read(func(s *fsm.State) {
		for id, m := range s.Manifests {
			plans[id] = m
		}
		for id, r := range s.Registrations {
			registered[id] = r
		}
		for id, site := range s.Sites {
			knownSites[id] = true
			if full {
				sites = append(sites, *site)
			}
		}
		addDrained(s, drained)
	})
	var apps []steering.Appliance
	for _, b := range f.Beats() {
		if !knownSites[b.Beat.Site] {
			continue // its site is not configured yet: nowhere to steer from
		}
		// Not registered (revoked since), or saying what its registration
		// does not (a beat passed on by a node is checked here again).
		if r := registered[b.ID]; r == nil || !r.AllowsURL(b.Beat.URL) || r.Site != b.Beat.Site || r.Profile != b.Beat.Profile {
			continue
		}
		apps = append(apps, steering.Appliance{
			ID: b.ID, Site: b.Beat.Site, URL: b.Beat.URL, LastSeen: b.Seen,
			Draining: b.Beat.Health == fillcast.HealthDraining || drained[b.ID] || drained[b.Beat.Site],
			Load:     b.Beat.BPS / f.cfg.BitsPerPlayer,
			Titles:   f.titlesOf(b.ID, b.Beat, plans[b.ID]),
		})
	}
	var (
		next *steering.Fleet
		err  error
	)
	if full {
		sort.Slice(sites, func(i, j int) bool { return sites[i].ID < sites[j].ID })
		next, err = f.d.Steerer.Build(sites, apps)
	} else {
		next, err = f.d.Steerer.Update(f.current.Load(), apps)
	}
	if err != nil {
		return err
	}
	f.current.Store(next)
	return nil
}

// titleSet is a flash appliance's steerable titles: the plan at one
// manifest version, narrowed to the titles it reported complete.
type titleSet struct {
	version     uint64   // the manifest's
	planVersion uint64   // the appliance's report; 0: none
	complete    []string // its complete titles as reported
	set         *steering.TitleSet
}

// titlesOf returns the titles steering may send to an appliance: all of
// them (nil) for a storage appliance or a flash appliance without a plan
// yet (it fills on demand); else the titles its fill manifest plans, and
// of those, once it reports its fill progress, only the ones it holds
// complete, so that a title planned but not yet filled goes to an
// appliance that has it rather than through a flash miss. A beat that
// leaves an unchanged list out (CompleteSame) keeps the set known; a node
// that never saw the list steers by the plan until it comes again.
func (f *Fleet) titlesOf(id string, hb fillcast.Heartbeat, m *fsm.Manifest) *steering.TitleSet {
	if hb.Profile != fillcast.ProfileFlash || m == nil {
		return nil
	}
	cur, ok := f.sets[id]
	complete := hb.CompleteTitles
	if hb.CompleteSame {
		if !ok || cur.planVersion != hb.PlanVersion {
			return steering.NewTitleSet(m.Titles) // the list is not known here yet
		}
		// Unchanged since the list this node knows, also when a new
		// plan has come since: the appliance holds what it held.
		complete = cur.complete
	}
	if ok && cur.version == m.Version && cur.planVersion == hb.PlanVersion && slices.Equal(cur.complete, complete) {
		return cur.set
	}
	titles := m.Titles
	if hb.PlanVersion > 0 {
		held := make(map[string]bool, len(complete))
		for _, t := range complete {
			held[t] = true
		}
		titles = make([]string, 0, len(complete))
		for _, t := range m.Titles {
			if held[t] {
				titles = append(titles, t)
			}
		}
	}
	set := steering.NewTitleSet(titles)
	f.sets[id] = titleSet{m.Version, hb.PlanVersion, complete, set}
	return set
}

func (f *Fleet) forwardLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case body := <-f.outbox:
			for _, peer := range f.d.Peers() {
				f.send(ctx, peer, body)
			}
		}
	}
}

func (f *Fleet) send(ctx context.Context, peer string, body []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peer+PeerPath, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.d.NodeToken)
	resp, err := f.d.Client.Do(req)
	if err != nil {
		f.log.Debug("fleet: pass heartbeat on", "peer", peer, "err", err)
		return
	}
	resp.Body.Close()
}
