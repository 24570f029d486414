// Package agent is the appliance's link to the control plane: every
// Interval it posts a heartbeat (health, load, capacity and usage, bytes
// served per title, and the p99 response time and error ratio of the
// requests since the previous beat) through the control-plane
// client, which fails over between the nodes and learns new ones
// (controlplane/client). The control plane steers players only to
// appliances whose heartbeats are fresh, so the agent is also how an
// appliance drains: it reports "draining". It also hands the appliance
// the control plane's replicated signing keys when they change, and
// applies the takedowns (deleted titles) the control plane answers
// heartbeats with (takedown.go). Beside
// the Agent, a UsageReporter sends the usage summaries of the appliance's
// access log (appliance/usage) every 10 s, queued while no node takes
// them.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/appliance/latency"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/client"
)

// ControlPlane is what the agent needs of the control plane.
type ControlPlane interface {
	// Beat posts one heartbeat of the appliance and returns the
	// takedowns the control plane answered with.
	Beat(ctx context.Context, applianceID string, hb fillcast.Heartbeat) (fillcast.HeartbeatReply, error)
	// Keys returns the replicated signing keys.
	Keys(ctx context.Context) ([]auth.Key, error)
	// FillPass returns a new fill pass of the appliance.
	FillPass(ctx context.Context, applianceID string) (fillcast.FillPass, error)
}

var _ ControlPlane = (*client.Client)(nil)

// Counters are the appliance's cumulative counters, read at every beat.
type Counters struct {
	Requests      int64
	Bytes         int64
	TitleBytes    map[string]int64
	UsedBytes     int64
	CapacityBytes int64
	// Hits and Lookups count cache lookups and those a tier answered.
	Hits, Lookups int64
	// FillPlannedBytes and FillPresentBytes are the fill progress.
	FillPlannedBytes, FillPresentBytes int64
	// PlanVersion and CompleteTitles are the fill manifest in force and
	// its titles held in full, for steering (flash appliances).
	PlanVersion    uint64
	CompleteTitles []string
	// Latency counts the content requests answered by response time, and
	// Failed those that failed (fillcast.Heartbeat.ErrorRatio says
	// which): a heartbeat's Requests, P99Millis and ErrorRatio are their
	// differences.
	Latency latency.Snapshot
	Failed  uint64
	// FailedDisks are the cache directories out of service.
	FailedDisks []string
}

// Config configures an Agent. Zero values mean the defaults named.
type Config struct {
	// ID, Site and Profile are the appliance's. Required.
	ID, Site, Profile string
	// URL is where players and peers reach this appliance. Required.
	URL string
	// Interval between heartbeats. Zero means 2 s.
	Interval time.Duration
	// KeysEvery is how often keys are fetched (see Deps.OnKeys). Zero
	// means 30 s.
	KeysEvery time.Duration
	// StateFile, when set, keeps the last takedown applied and the
	// titles whose earlier tokens are refused across restarts
	// (takedown.go). Empty keeps them in memory: a restarted appliance
	// then applies every takedown the control plane's record holds.
	StateFile string
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	for _, f := range []struct{ name, value, what string }{
		{"ID", c.ID, "the appliance's id"},
		{"Site", c.Site, "the appliance's site"},
		{"Profile", c.Profile, "flash or storage"},
		{"URL", c.URL, "where players and peers reach the appliance"},
	} {
		if f.value == "" {
			return fillcast.ConfigErrorf("agent", f.name, "required: %s", f.what)
		}
	}
	if c.Interval < 0 {
		return fillcast.ConfigErrorf("agent", "Interval", "%v is negative", c.Interval)
	}
	if c.KeysEvery < 0 {
		return fillcast.ConfigErrorf("agent", "KeysEvery", "%v is negative", c.KeysEvery)
	}
	return nil
}

// DefaultConfig returns a Config with every default filled in but the
// appliance's own fields.
func DefaultConfig() Config {
	return Config{Interval: 2 * time.Second, KeysEvery: 30 * time.Second}
}

// withDefaults fills the zero fields; c has passed Validate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Interval = cmp.Or(c.Interval, d.Interval)
	c.KeysEvery = cmp.Or(c.KeysEvery, d.KeysEvery)
	return c
}

// Deps are what an Agent works with besides its Config.
type Deps struct {
	// ControlPlane receives the heartbeats. Required.
	ControlPlane ControlPlane
	// Read returns the current counters. Required.
	Read func() Counters
	// OnKeys, if set, receives the control plane's replicated signing
	// keys (GET /v1/keys) every Config.KeysEvery, when they change.
	OnKeys func([]auth.Key)
	// OnFillPass, if set, receives a fill pass at the start and a new one
	// each time half of the last one's life has passed.
	OnFillPass func(fillcast.FillPass)
	// Purger, if set, applies the takedowns the heartbeats are answered
	// with (takedown.go).
	Purger Purger
	// OnRefusals, if set, receives the taken-down titles whose earlier
	// tokens are refused, each time they change and at Run's start.
	OnRefusals func(*auth.Takedowns)
	// Log receives failed heartbeats; nil discards them.
	Log *slog.Logger
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

// Agent sends heartbeats until stopped.
type Agent struct {
	cfg      Config
	d        Deps
	cp       ControlPlane
	log      *slog.Logger
	draining atomic.Bool
	kick     chan struct{}
	acked    atomic.Int64 // heartbeats the control plane accepted

	mu   sync.Mutex
	last Counters
	at   time.Time
	// sinceFull counts the beats since the complete titles last went out.
	sinceFull int

	// takedowns is what the agent has applied (takedown.go); seq is
	// also read by Heartbeat.
	takedowns takedowns

	keysAt   time.Time  // last key fetch that succeeded
	keysSeen []auth.Key // the keys last handed to OnKeys
	renewAt  time.Time  // when the fill pass is renewed; zero: now
}

// New returns an Agent that reports through d.ControlPlane; Run starts it.
func New(cfg Config, d Deps) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.ControlPlane == nil || d.Read == nil {
		return nil, errors.New("agent: Deps.ControlPlane and Deps.Read are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Agent{cfg: cfg.withDefaults(), d: d, cp: d.ControlPlane, log: d.Log, kick: make(chan struct{}, 1), at: d.Now()}, nil
}

// SetDraining makes the next heartbeat, sent at once, report "draining".
func (a *Agent) SetDraining() {
	a.draining.Store(true)
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Acked returns how many heartbeats the control plane has accepted.
func (a *Agent) Acked() int64 { return a.acked.Load() }

// Run sends heartbeats every Interval until ctx is done.
func (a *Agent) Run(ctx context.Context) {
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	a.loadTakedowns()
	for {
		a.beat(ctx)
		a.maybeFetchKeys(ctx)
		a.maybeRenewFillPass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.kick:
		}
	}
}

// resendCompleteEvery is how many beats may say "complete titles as
// before" in a row: a control-plane node that missed the list (it
// restarted, or the beat went elsewhere) has it again within that many.
const resendCompleteEvery = 30

// Heartbeat builds the next heartbeat body: rates and title bytes are
// differences since the previous call.
func (a *Agent) Heartbeat() fillcast.Heartbeat {
	now := a.d.Now()
	c := a.d.Read()
	a.mu.Lock()
	prev, since := a.last, now.Sub(a.at).Seconds()
	a.last, a.at = c, now
	// prev is the last beat the control plane accepted (beat restores it
	// when none did), so an unchanged list can be left out.
	same := c.PlanVersion != 0 && c.PlanVersion == prev.PlanVersion && slices.Equal(c.CompleteTitles, prev.CompleteTitles) && a.sinceFull < resendCompleteEvery
	if same {
		a.sinceFull++
	} else {
		a.sinceFull = 0
	}
	a.mu.Unlock()
	hb := fillcast.Heartbeat{
		Site: a.cfg.Site, Profile: a.cfg.Profile, URL: a.cfg.URL,
		CapacityBytes: c.CapacityBytes, UsedBytes: c.UsedBytes, Health: fillcast.HealthOK,
		TitleBytes: map[string]int64{}, FillPlannedBytes: c.FillPlannedBytes, FillPresentBytes: c.FillPresentBytes,
		PlanVersion: c.PlanVersion, CompleteTitles: c.CompleteTitles, FailedDisks: c.FailedDisks,
		TakedownSeq: a.takedowns.seq.Load(),
	}
	if same {
		hb.CompleteTitles, hb.CompleteSame = nil, true
	}
	if n := c.Lookups - prev.Lookups; n > 0 {
		hb.HitRatio = float64(c.Hits-prev.Hits) / float64(n)
	}
	if a.draining.Load() {
		hb.Health = fillcast.HealthDraining
	}
	if since > 0 {
		hb.RPS = float64(c.Requests-prev.Requests) / since
		hb.BPS = 8 * float64(c.Bytes-prev.Bytes) / since
	}
	lat := c.Latency.Sub(prev.Latency)
	if hb.Requests = lat.Count(); hb.Requests > 0 {
		hb.P99Millis = float64(lat.Quantile(0.99)) / float64(time.Millisecond)
		if c.Failed > prev.Failed {
			// A stream cut short counts when it breaks off, which may be
			// an interval after its request: never more than all.
			hb.ErrorRatio = min(1, float64(c.Failed-prev.Failed)/float64(hb.Requests))
		}
	}
	for t, n := range c.TitleBytes {
		if d := n - prev.TitleBytes[t]; d > 0 {
			hb.TitleBytes[t] = d
		}
	}
	return hb
}

// beat sends one heartbeat (the client tries every control-plane node it
// knows). Title bytes of a beat nobody accepted are carried into the next
// one.
func (a *Agent) beat(ctx context.Context) {
	a.mu.Lock()
	prev, prevAt := a.last, a.at
	a.mu.Unlock()
	reply, err := a.cp.Beat(ctx, a.cfg.ID, a.Heartbeat())
	if err == nil {
		a.applyTakedowns(reply)
		a.acked.Add(1)
		return
	}
	if ctx.Err() == nil {
		a.log.Warn("agent: no control plane accepted the heartbeat", "err", err)
	}
	a.mu.Lock()
	a.last, a.at = prev, prevAt
	a.mu.Unlock()
}

// maybeFetchKeys fetches the replicated keys when KeysEvery has passed
// and hands them to OnKeys when they differ from the last ones. The fetch
// runs between two beats, so it gets one Interval: a hung node must not
// hold the next beat back (the client asks another node first next
// time). A fetch that fails is tried again after the next beat.
func (a *Agent) maybeFetchKeys(ctx context.Context) {
	if a.d.OnKeys == nil || a.d.Now().Sub(a.keysAt) < a.cfg.KeysEvery {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, a.cfg.Interval)
	keys, err := a.cp.Keys(fctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("agent: fetch keys", "err", err)
		}
		return
	}
	a.keysAt = a.d.Now()
	if len(keys) == 0 || slices.Equal(keys, a.keysSeen) {
		return
	}
	a.keysSeen = keys
	a.d.OnKeys(keys)
}

// maybeRenewFillPass fetches a fill pass when none was fetched yet or half
// of the last one's life has passed, and hands it to OnFillPass. Like the
// key fetch it runs between two beats, bounded by one Interval; a failure
// is tried again after the next beat, while the last pass still serves.
func (a *Agent) maybeRenewFillPass(ctx context.Context) {
	now := a.d.Now()
	if a.d.OnFillPass == nil || now.Before(a.renewAt) {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, a.cfg.Interval)
	p, err := a.cp.FillPass(fctx, a.cfg.ID)
	cancel()
	if err == nil && (p.Pass == "" || !p.ExpiresAt.After(now)) {
		err = fmt.Errorf("agent: the control plane answered a fill pass %q expiring %v", p.Pass, p.ExpiresAt)
	}
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("agent: fetch a fill pass", "err", err)
		}
		return
	}
	a.renewAt = now.Add(p.ExpiresAt.Sub(now) / 2)
	a.d.OnFillPass(p)
}
