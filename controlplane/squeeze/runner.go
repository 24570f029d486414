package squeeze

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/rules"
)

// Store is the replicated state as the Runner uses it: reads of the
// local copy, and writes through raft (a node's apply, which forwards to
// the leader). The Runner writes OpPutSqueeze, OpPutRule and
// OpDeleteRule.
type Store interface {
	Read(fn func(s *fsm.State))
	Apply(ctx context.Context, c fsm.Command) error
}

// Stats is what an appliance's latest heartbeat says of its serving.
type Stats struct {
	P99Millis  float64   // 99th percentile of response latency, ms
	ErrorRatio float64   // share of responses that failed, 0 to 1
	RPS        float64   // requests per second
	Seen       time.Time // when the heartbeat arrived
}

// StatsSource gives an appliance's latest heartbeat stats, false when
// none is known.
type StatsSource interface {
	Appliance(id string) (Stats, bool)
}

// ErrFinished is what Cancel returns for a squeeze that has already
// finished.
var ErrFinished = errors.New("squeeze: already finished")

// Config tunes a Runner. Zero values mean the defaults named.
type Config struct {
	// Tick is the longest the leader waits between two looks at the
	// running squeezes; it also wakes when a step ends. Zero means 250ms.
	Tick time.Duration
	// SilentSteps is how many steps a squeeze waits for a heartbeat from
	// its appliance after a step started before it aborts. Zero means 3.
	SilentSteps int
	// WriteTimeout bounds each write. Zero means 5s.
	WriteTimeout time.Duration
}

// Validate reports the first field that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Tick < 0:
		return fillcast.ConfigErrorf("squeeze", "Tick", "%v is negative", c.Tick)
	case c.SilentSteps < 0:
		return fillcast.ConfigErrorf("squeeze", "SilentSteps", "%d is negative", c.SilentSteps)
	case c.WriteTimeout < 0:
		return fillcast.ConfigErrorf("squeeze", "WriteTimeout", "%v is negative", c.WriteTimeout)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Tick == 0 {
		c.Tick = 250 * time.Millisecond
	}
	if c.SilentSteps == 0 {
		c.SilentSteps = 3
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 5 * time.Second
	}
	return c
}

// Deps are what a Runner works with.
type Deps struct {
	// Store is the replicated state. Required.
	Store Store
	// Stats gives the appliances' latest heartbeats. Required.
	Stats StatsSource
	// Leader reports whether this node leads: only the leader advances
	// squeezes. Required.
	Leader func() bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives what the Runner does; nil discards it.
	Log *slog.Logger
}

// Runner advances the running squeezes while its node leads.
type Runner struct {
	cfg Config
	d   Deps
}

// New returns a Runner; Run runs it. It does no I/O.
func New(cfg Config, d Deps) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Stats == nil || d.Leader == nil {
		return nil, errors.New("squeeze: Deps.Store, Deps.Stats and Deps.Leader are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg.withDefaults(), d: d}, nil
}

// RuleID returns the id of the canary rule of squeeze id.
func RuleID(id string) string { return rules.SqueezePrefix + id }

// Run advances running squeezes until ctx ends, then returns nil. It
// starts no goroutine.
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		t.Reset(r.pass(ctx))
	}
}

// pass advances every running squeeze once, removes the canary rules of
// finished ones, and returns how long to wait for the next pass.
func (r *Runner) pass(ctx context.Context) time.Duration {
	wait := r.cfg.Tick
	if !r.d.Leader() {
		return wait
	}
	var running []*fsm.Squeeze
	var orphans []string
	registered := map[string]bool{}
	share := map[string]float64{} // of each running squeeze's canary rule
	r.d.Store.Read(func(s *fsm.State) {
		for _, q := range s.Squeezes {
			if !q.Finished() {
				running = append(running, q)
				registered[q.Appliance] = s.Registrations[q.Appliance] != nil
				if rule := s.Rules[RuleID(q.ID)]; rule != nil {
					share[q.ID] = rule.Percent
				}
			}
		}
		for id := range s.Rules {
			if sq, ok := strings.CutPrefix(id, rules.SqueezePrefix); ok && (s.Squeezes[sq] == nil || s.Squeezes[sq].Finished()) {
				orphans = append(orphans, id)
			}
		}
	})
	sort.Slice(running, func(i, j int) bool { return running[i].ID < running[j].ID })
	for _, id := range orphans {
		if err := r.deleteRule(ctx, id, "squeeze"); err != nil {
			r.d.Log.Warn("squeeze: delete canary rule", "rule", id, "err", err)
		}
	}
	for _, q := range running {
		if ctx.Err() != nil {
			return wait
		}
		if err := r.advance(ctx, q, registered[q.Appliance], share[q.ID]); err != nil {
			r.d.Log.Warn("squeeze: advance", "squeeze", q.ID, "err", err)
			continue
		}
	}
	now := r.d.Now()
	r.d.Store.Read(func(s *fsm.State) {
		for _, q := range s.Squeezes {
			if !q.Finished() && !q.StepStarted.IsZero() {
				wait = min(wait, max(q.StepStarted.Add(q.Step).Sub(now), time.Millisecond))
			}
		}
	})
	return wait
}

// advance takes one squeeze one move further, if it is due: start its
// next step, or judge the step that ended. share is its canary rule's
// percent (0 for none): a rule that is not the step's (deleted by hand,
// or put by a leader that had not seen the latest step) is put again.
func (r *Runner) advance(ctx context.Context, q *fsm.Squeeze, registered bool, share float64) error {
	now := r.d.Now()
	if !registered {
		return r.finish(ctx, q, fsm.SqueezeAborted, fmt.Sprintf("appliance %s is gone: no longer registered", q.Appliance), nil)
	}
	if q.StepStarted.IsZero() {
		return r.startStep(ctx, q, now, nil)
	}
	if share != q.Percent {
		r.d.Log.Warn("squeeze: canary rule out of step; putting it again", "squeeze", q.ID, "rule_percent", share, "step_percent", q.Percent)
		if err := r.apply(ctx, fsm.Command{Op: fsm.OpPutRule, Rule: r.rule(q, q.Percent, now)}); err != nil {
			return err
		}
	}
	if now.Before(q.StepStarted.Add(q.Step)) {
		return nil
	}
	st, ok := r.d.Stats.Appliance(q.Appliance)
	if !ok || !st.Seen.After(q.StepStarted) {
		if silent := time.Duration(r.cfg.SilentSteps) * q.Step; now.Sub(q.StepStarted) >= silent {
			return r.finish(ctx, q, fsm.SqueezeAborted, fmt.Sprintf("no heartbeat from %s in %d steps (%v) at %s %%", q.Appliance, r.cfg.SilentSteps, silent, num(q.Percent)), nil)
		}
		return nil
	}
	step := fsm.SqueezeStep{Percent: q.Percent, RPS: st.RPS, P99Millis: st.P99Millis, ErrorRatio: st.ErrorRatio, At: now}
	var reason string
	switch {
	case st.P99Millis > q.MaxP99Millis:
		reason = fmt.Sprintf("p99 %s ms > %s ms at %s %%", num(st.P99Millis), num(q.MaxP99Millis), num(q.Percent))
	case st.ErrorRatio > q.MaxErrorRatio:
		reason = fmt.Sprintf("error ratio %s > %s at %s %%", num(st.ErrorRatio), num(q.MaxErrorRatio), num(q.Percent))
	}
	if reason != "" {
		step.Crossed = true
		return r.finish(ctx, q, fsm.SqueezeStopped, reason, &step)
	}
	if q.Percent >= 100 {
		return r.finish(ctx, q, fsm.SqueezeCompleted, fmt.Sprintf("held 100 %% within the bounds (p99 %s ms, error ratio %s)", num(st.P99Millis), num(st.ErrorRatio)), &step)
	}
	return r.startStep(ctx, q, now, &step)
}

// startStep records done, the step that just passed (nil for none),
// puts the canary rule at the share of the squeeze's next step and
// records the step's start. A crash between the two writes leaves a
// record from which the next leader starts the same step again.
func (r *Runner) startStep(ctx context.Context, q *fsm.Squeeze, now time.Time, done *fsm.SqueezeStep) error {
	next := r.next(q, now)
	if done != nil {
		next.Steps = append(next.Steps, *done)
		next.HeldPercent, next.HeldRPS = done.Percent, done.RPS
	}
	pct := stepPercent(q.StepPercent, len(next.Steps)+1)
	if err := r.apply(ctx, fsm.Command{Op: fsm.OpPutRule, Rule: r.rule(q, pct, now)}); err != nil {
		return err
	}
	// The step starts once its share is in place: a heartbeat seen
	// before (one that judged the previous step) says nothing of it.
	next.Percent, next.StepStarted = pct, r.d.Now()
	r.d.Log.Info("squeeze: step", "squeeze", q.ID, "appliance", q.Appliance, "percent", pct)
	return r.apply(ctx, fsm.Command{Op: fsm.OpPutSqueeze, Squeeze: next})
}

// finish records the end of a squeeze, with its last step if given, and
// deletes the canary rule (or leaves that to the next pass, which removes
// the rules of finished squeezes, if the deletion fails).
func (r *Runner) finish(ctx context.Context, q *fsm.Squeeze, status, reason string, last *fsm.SqueezeStep) error {
	next := r.next(q, r.d.Now())
	next.Status, next.Reason = status, reason
	next.Percent, next.StepStarted = 0, time.Time{}
	if last != nil {
		next.Steps = append(next.Steps, *last)
		if !last.Crossed {
			next.HeldPercent, next.HeldRPS = last.Percent, last.RPS
		}
	}
	if err := r.apply(ctx, fsm.Command{Op: fsm.OpPutSqueeze, Squeeze: next}); err != nil {
		return err
	}
	r.d.Log.Info("squeeze: finished", "squeeze", q.ID, "appliance", q.Appliance, "status", status, "reason", reason, "held_percent", next.HeldPercent, "held_rps", next.HeldRPS)
	return r.deleteRule(ctx, RuleID(q.ID), "squeeze:"+q.ID)
}

// rule returns squeeze q's canary rule at share pct.
func (r *Runner) rule(q *fsm.Squeeze, pct float64, now time.Time) *fsm.Rule {
	return &fsm.Rule{
		ID: RuleID(q.ID), Kind: fsm.RuleCanary, Title: "*", Percent: pct,
		Target:    &fsm.RuleTarget{Appliances: []string{q.Appliance}},
		UpdatedBy: "squeeze:" + q.ID, Updated: now,
	}
}

// next returns a copy of q to be put as its next version.
func (r *Runner) next(q *fsm.Squeeze, now time.Time) *fsm.Squeeze {
	n := *q
	n.Steps = append([]fsm.SqueezeStep(nil), q.Steps...)
	n.Version++
	n.Updated = now
	return &n
}

func (r *Runner) deleteRule(ctx context.Context, id, by string) error {
	return r.apply(ctx, fsm.Command{Op: fsm.OpDeleteRule, ID: id, By: by, At: r.d.Now()})
}

func (r *Runner) apply(ctx context.Context, c fsm.Command) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
	defer cancel()
	if err := r.d.Store.Apply(ctx, c); err != nil {
		return fmt.Errorf("squeeze: %s: %w", c.Op, err)
	}
	return nil
}
