package squeeze

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fillcast/fillcast/controlplane/fsm"
)

// Start proposes a new squeeze, q as Request.Squeeze made it, on any
// node: the leader's Runner takes it from there. It refuses (wrapping
// fsm.ErrInvalid) an appliance that is not registered or that another
// squeeze is running on. Two racing starts are settled by the state:
// the loser gets fsm.ErrExists.
func (r *Runner) Start(ctx context.Context, q *fsm.Squeeze) error {
	if q == nil || q.Version != 1 || q.Finished() {
		return invalid("start needs a new running squeeze (version 1)")
	}
	var problem error
	r.d.Store.Read(func(s *fsm.State) {
		if s.Registrations[q.Appliance] == nil {
			problem = invalid("appliance %s is not registered", q.Appliance)
			return
		}
		if s.Squeezes[q.ID] != nil {
			problem = fmt.Errorf("squeeze: %w: squeeze %s exists: choose another id", fsm.ErrExists, q.ID)
			return
		}
		for _, o := range s.Squeezes {
			if o.Appliance == q.Appliance && !o.Finished() {
				problem = invalid("squeeze %s already runs on appliance %s: wait for it or cancel it (DELETE /v1/squeeze/%s)", o.ID, o.Appliance, o.ID)
				return
			}
		}
	})
	if problem != nil {
		return problem
	}
	return r.apply(ctx, fsm.Command{Op: fsm.OpPutSqueeze, Squeeze: q})
}

// Cancel aborts a running squeeze, on any node, and deletes its canary
// rule. It returns an error wrapping fsm.ErrNotFound for an unknown id
// and ErrFinished for a squeeze that has already finished. A step that
// the leader records at the same moment makes the write stale: Cancel
// reads again and retries.
func (r *Runner) Cancel(ctx context.Context, id, by string) error {
	for attempt := 0; ; attempt++ {
		var q *fsm.Squeeze
		r.d.Store.Read(func(s *fsm.State) { q = s.Squeezes[id] })
		switch {
		case q == nil:
			return fmt.Errorf("squeeze: %w: squeeze %s", fsm.ErrNotFound, id)
		case q.Finished():
			return fmt.Errorf("%w: squeeze %s %s (%s)", ErrFinished, id, q.Status, q.Reason)
		}
		next := r.next(q, r.d.Now())
		next.Status, next.Reason = fsm.SqueezeAborted, "cancelled by "+by
		next.Percent, next.StepStarted = 0, time.Time{}
		err := r.apply(ctx, fsm.Command{Op: fsm.OpPutSqueeze, Squeeze: next})
		if errors.Is(err, fsm.ErrStale) && attempt < 5 {
			continue
		}
		if err != nil {
			return err
		}
		return r.deleteRule(ctx, RuleID(id), by)
	}
}

// stepPercent is the canary share of step k (from 1): k steps of p, at
// most 100, rounded to a millionth so that 3 × 0.1 is 0.3.
func stepPercent(p float64, k int) float64 {
	return math.Min(100, math.Round(float64(k)*p*1e6)/1e6)
}

// num formats a measure for a reason: at most one decimal for values
// from 1 up, three significant digits below.
func num(x float64) string {
	if math.Abs(x) >= 1 {
		return strconv.FormatFloat(math.Round(x*10)/10, 'f', -1, 64)
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}
