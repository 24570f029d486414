// Package agent is the appliance's link to the control plane: every
// Interval it posts a heartbeat (health, load, capacity and usage, bytes
// served per title since the previous beat) to one of the control-plane
// nodes, failing over to the next when one does not answer. The control
// plane steers players only to appliances whose heartbeats are fresh, so
// the agent is also how an appliance drains: it reports "draining".
package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

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
}

// Config configures an Agent.
type Config struct {
	ID, Site, Profile string
	// URL is where players and peers reach this appliance. Required.
	URL string
	// ControlPlanes are the control-plane node URLs. Required.
	ControlPlanes []string
	// AdminToken authenticates heartbeats.
	AdminToken string
	// Interval between heartbeats. Zero means 2 s.
	Interval time.Duration
	// Read returns the current counters. Required.
	Read func() Counters
	// OnKeys, if set, receives the control plane's replicated signing
	// keys (GET /v1/keys) every KeysEvery, when they change.
	OnKeys func([]auth.Key)
	// KeysEvery is how often keys are fetched. Zero means 30 s.
	KeysEvery time.Duration
	// Client posts heartbeats; nil means one with a timeout of Interval.
	Client *http.Client
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

// Validate fills defaults and reports the first problem.
func (c *Config) Validate() error {
	if c.ID == "" || c.Site == "" || c.Profile == "" || c.URL == "" {
		return errors.New("agent: id, site, profile and the appliance URL are required")
	}
	if len(c.ControlPlanes) == 0 {
		return errors.New("agent: at least one control-plane URL is required")
	}
	for _, u := range c.ControlPlanes {
		if p, err := url.Parse(u); err != nil || p.Host == "" {
			return fmt.Errorf("agent: control plane %q is not a URL", u)
		}
	}
	if c.Read == nil {
		return errors.New("agent: a counter source is required")
	}
	if c.Interval <= 0 {
		c.Interval = 2 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Interval}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.KeysEvery <= 0 {
		c.KeysEvery = 30 * time.Second
	}
	return nil
}

// Agent sends heartbeats until stopped.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	draining atomic.Bool
	kick     chan struct{}
	acked    atomic.Int64 // heartbeats the control plane accepted
	current  int          // index of the control plane that answered last

	mu   sync.Mutex
	last Counters
	at   time.Time
	// sinceFull counts the beats since the complete titles last went out.
	sinceFull int

	keysAt   time.Time // last key fetch
	keysSeen string    // the keys last handed to OnKeys, as JSON
}

// New returns an Agent; Run starts it.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, log: log, kick: make(chan struct{}, 1), at: cfg.Now()}, nil
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
	for {
		a.beat(ctx)
		a.maybeFetchKeys(ctx)
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
	now := a.cfg.Now()
	c := a.cfg.Read()
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
		PlanVersion: c.PlanVersion, CompleteTitles: c.CompleteTitles,
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
	for t, n := range c.TitleBytes {
		if d := n - prev.TitleBytes[t]; d > 0 {
			hb.TitleBytes[t] = d
		}
	}
	return hb
}

// beat sends one heartbeat, trying each control plane once from the one
// that answered last. Title bytes of a beat nobody accepted are carried
// into the next one.
func (a *Agent) beat(ctx context.Context) {
	a.mu.Lock()
	prev, prevAt := a.last, a.at
	a.mu.Unlock()
	hb := a.Heartbeat()
	body, err := json.Marshal(hb)
	if err != nil {
		a.log.Error("agent: encode heartbeat", "err", err)
		return
	}
	n := len(a.cfg.ControlPlanes)
	for i := range n {
		idx := (a.current + i) % n
		if err = a.post(ctx, a.cfg.ControlPlanes[idx], body); err == nil {
			a.current = idx
			a.acked.Add(1)
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
	a.log.Warn("agent: no control plane accepted the heartbeat", "err", err)
	a.mu.Lock()
	a.last, a.at = prev, prevAt
	a.mu.Unlock()
}

func (a *Agent) post(ctx context.Context, base string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/appliances/"+url.PathEscape(a.cfg.ID)+"/heartbeat", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.cfg.AdminToken)
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("agent: %s: %w", base, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("agent: %s answered %s: %s", base, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// maybeFetchKeys fetches the replicated keys when KeysEvery has passed,
// from the control plane that answered the last heartbeat.
func (a *Agent) maybeFetchKeys(ctx context.Context) {
	if a.cfg.OnKeys == nil || a.cfg.Now().Sub(a.keysAt) < a.cfg.KeysEvery {
		return
	}
	a.keysAt = a.cfg.Now()
	base := a.cfg.ControlPlanes[a.current]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/keys", nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.AdminToken)
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		a.log.Warn("agent: fetch keys", "err", err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		a.log.Warn("agent: fetch keys", "status", resp.Status, "err", err)
		return
	}
	var kb struct {
		Keys []auth.Key `json:"keys"`
	}
	if err := json.Unmarshal(body, &kb); err != nil {
		a.log.Warn("agent: keys body", "err", err)
		return
	}
	if string(body) == a.keysSeen || len(kb.Keys) == 0 {
		return
	}
	a.keysSeen = string(body)
	a.cfg.OnKeys(kb.Keys)
}
