package fsm

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"
)

// Squeeze statuses.
const (
	// SqueezeRunning is a squeeze the leader advances.
	SqueezeRunning = "running"
	// SqueezeStopped ended when a step crossed a bound.
	SqueezeStopped = "stopped"
	// SqueezeCompleted reached 100 % within the bounds.
	SqueezeCompleted = "completed"
	// SqueezeAborted was cancelled, or its appliance went away or fell
	// silent.
	SqueezeAborted = "aborted"
)

// KeptSqueezes is how many finished squeezes the state keeps, the most
// recently updated; running ones are always kept.
const KeptSqueezes = 100

// maxSqueezeSteps bounds a squeeze's recorded steps.
const maxSqueezeSteps = 1000

// ErrStale is what OpPutSqueeze returns when the record's Version is not
// one more than the stored one: another writer got there first; read
// and try again. It wraps ErrExists.
var ErrStale = fmt.Errorf("%w: stale version", ErrExists)

// Squeeze is a squeeze test (Netflix Zuul's): a canary rule sends a
// growing share of new playbacks to one appliance, step by step, while
// its p99 latency and error ratio stay within bounds, to find how much
// load it holds. The package controlplane/squeeze runs it; this record
// is its whole state, so a new leader continues where the last one was.
type Squeeze struct {
	ID            string        `json:"id"`
	Appliance     string        `json:"appliance"`
	StepPercent   float64       `json:"step_percent"`
	Step          time.Duration `json:"step"` // in JSON a Go duration string, "10s"
	MaxP99Millis  float64       `json:"max_p99_ms"`
	MaxErrorRatio float64       `json:"max_error_ratio"`

	// Status is SqueezeRunning, SqueezeStopped, SqueezeCompleted or
	// SqueezeAborted; Reason says why it finished.
	Status string        `json:"status"`
	Reason string        `json:"reason,omitempty"`
	Steps  []SqueezeStep `json:"steps,omitempty"`

	// Percent is the canary share of the step under way and StepStarted
	// when it began; zero between steps.
	Percent     float64   `json:"percent,omitempty"`
	StepStarted time.Time `json:"step_started,omitzero"`

	// HeldPercent and HeldRPS are the last step within the bounds.
	HeldPercent float64 `json:"held_percent"`
	HeldRPS     float64 `json:"held_rps"`

	StartedBy string    `json:"started_by,omitempty"`
	Started   time.Time `json:"started"`
	Updated   time.Time `json:"updated"`

	// Version is 1 for a new squeeze and one more at every put
	// (compare-and-set: see ErrStale).
	Version uint64 `json:"version"`
}

// SqueezeStep is one finished step: the share sent, what the appliance
// reported at its end, and whether that crossed a bound.
type SqueezeStep struct {
	Percent    float64   `json:"percent"`
	RPS        float64   `json:"rps"`
	P99Millis  float64   `json:"p99_ms"`
	ErrorRatio float64   `json:"error_ratio"`
	At         time.Time `json:"at"`
	Crossed    bool      `json:"crossed,omitempty"`
}

// Finished reports whether the squeeze has ended, one way or another.
func (q *Squeeze) Finished() bool { return q.Status != SqueezeRunning }

// squeezeFields is Squeeze without its methods.
type squeezeFields Squeeze

type squeezeJSON struct {
	squeezeFields
	Step string `json:"step"`
}

// MarshalJSON writes Step as a Go duration string.
func (q Squeeze) MarshalJSON() ([]byte, error) {
	return json.Marshal(squeezeJSON{squeezeFields(q), q.Step.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (q *Squeeze) UnmarshalJSON(b []byte) error {
	var in squeezeJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*q = Squeeze(in.squeezeFields)
	if in.Step != "" {
		d, err := time.ParseDuration(in.Step)
		if err != nil {
			return fmt.Errorf("fsm: squeeze step: %w", err)
		}
		q.Step = d
	}
	return nil
}

// checkSqueezeRecord is the structural check of OpPutSqueeze.
func checkSqueezeRecord(q *Squeeze) error {
	switch {
	case q == nil:
		return invalid("put_squeeze without a squeeze")
	case q.ID == "" || len(q.ID) > 128 || q.Appliance == "":
		return invalid("squeeze needs an id of 1 to 128 bytes and an appliance")
	case !(q.StepPercent > 0 && q.StepPercent <= 100) || q.Step <= 0:
		return invalid("squeeze %s needs step_percent in (0, 100] and a positive step", q.ID)
	case !(q.MaxP99Millis > 0) || !(q.MaxErrorRatio >= 0) || math.IsInf(q.MaxP99Millis, 1):
		return invalid("squeeze %s needs max_p99_ms > 0 and max_error_ratio >= 0", q.ID)
	case q.Version == 0:
		return invalid("squeeze %s needs a version", q.ID)
	case len(q.Steps) > maxSqueezeSteps:
		return invalid("squeeze %s has more than %d steps", q.ID, maxSqueezeSteps)
	}
	switch q.Status {
	case SqueezeRunning, SqueezeStopped, SqueezeCompleted, SqueezeAborted:
	default:
		return invalid("squeeze %s: unknown status %q", q.ID, q.Status)
	}
	return nil
}

// checkSqueeze refuses a put that is not the next version of the record,
// that revives a finished squeeze, or that would run two squeezes on one
// appliance.
func checkSqueeze(s *State, q *Squeeze) error {
	cur := s.Squeezes[q.ID]
	var want uint64 = 1
	if cur != nil {
		want = cur.Version + 1
	}
	if q.Version != want {
		return fmt.Errorf("fsm: %w: squeeze %s: version %d, want %d", ErrStale, q.ID, q.Version, want)
	}
	if cur != nil && cur.Finished() && !q.Finished() {
		return invalid("squeeze %s has finished (%s): start a new one", q.ID, cur.Status)
	}
	if q.Finished() {
		return nil
	}
	for _, o := range s.Squeezes {
		if o.ID != q.ID && o.Appliance == q.Appliance && !o.Finished() {
			return fmt.Errorf("fsm: %w: squeeze %s already runs on appliance %s", ErrExists, o.ID, o.Appliance)
		}
	}
	return nil
}

// applySqueeze stores q and forgets the oldest finished squeezes beyond
// KeptSqueezes, oldest by Updated then id, the same on every node.
func applySqueeze(s *State, q *Squeeze) {
	s.Squeezes[q.ID] = q
	if !q.Finished() {
		return
	}
	var done []*Squeeze
	for _, o := range s.Squeezes {
		if o.Finished() {
			done = append(done, o)
		}
	}
	if len(done) <= KeptSqueezes {
		return
	}
	sort.Slice(done, func(i, j int) bool {
		if !done[i].Updated.Equal(done[j].Updated) {
			return done[i].Updated.Before(done[j].Updated)
		}
		return done[i].ID < done[j].ID
	})
	for _, o := range done[:len(done)-KeptSqueezes] {
		delete(s.Squeezes, o.ID)
	}
}
