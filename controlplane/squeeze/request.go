// Package squeeze runs squeeze tests, as Netflix's Zuul does them: to find
// how much load one appliance holds, a canary rule sends it a growing
// share of new playbacks, step by step (5 %, 10 %, 15 %, ... every 10 s by
// default), while the p99 latency and error ratio of its heartbeats stay
// within bounds. The first step that crosses a bound stops the test; the
// step before it is what the appliance held. Reaching 100 % within the
// bounds completes it. Either way the canary rule is deleted, and steering
// is as it was.
//
// A squeeze is a record in the replicated state (fsm.Squeeze), started by
// POST /v1/squeeze (Parse, then Runner.Start) and advanced by the Runner
// of whichever control-plane node leads: every step is written to the
// record, so a new leader continues a running squeeze where the last one
// left it. The canary rule is fsm.Rule "squeeze-<id>" (RuleID), which
// controlplane/rules compiles like any canary.
package squeeze

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
)

// Defaults of a Request's zero fields.
const (
	DefaultStepPercent   = 5
	DefaultStep          = 10 * time.Second
	DefaultMaxP99Millis  = 50
	DefaultMaxErrorRatio = 0.01
)

// Bounds of a Request.
const (
	// MinStep is the shortest step: heartbeats come every 2 s, and a
	// step needs one after it started.
	MinStep = time.Second
	// MaxStep is the longest step.
	MaxStep = time.Hour
	// MinStepPercent keeps a squeeze within 1,000 steps.
	MinStepPercent = 0.1
)

// Request is the body of POST /v1/squeeze. Zero fields mean the
// defaults: 5 % steps of 10 s, a p99 of at most 50 ms and an error ratio
// of at most 0.01.
type Request struct {
	Appliance     string  `json:"appliance"`
	StepPercent   float64 `json:"step_percent,omitempty"`
	Step          string  `json:"step,omitempty"` // a Go duration, "10s"
	MaxP99Millis  float64 `json:"max_p99_ms,omitempty"`
	MaxErrorRatio float64 `json:"max_error_ratio,omitempty"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("squeeze: %w: %s", fsm.ErrInvalid, fmt.Sprintf(format, args...))
}

// Parse decodes a request body strictly (unknown fields refused) and
// validates it. Errors wrap fsm.ErrInvalid and read as a reason for a
// 400.
func Parse(body []byte) (*Request, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return nil, invalid("body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid("body: unexpected data after the JSON object")
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks the request: the appliance id, step ≥ 1 s (and at
// most an hour), step_percent in [0.1, 100], max_p99_ms > 0 and
// max_error_ratio in (0, 1]; zero fields stand for their defaults.
func (r *Request) Validate() error {
	if r.Appliance == "" {
		return invalid("appliance is required: the id of the appliance to squeeze")
	}
	if err := fillcast.ValidateTitleID(r.Appliance); err != nil {
		return invalid("appliance: %v", err)
	}
	if _, err := r.step(); err != nil {
		return err
	}
	switch p := r.StepPercent; {
	case p == 0:
	case !(p > 0 && p <= 100):
		return invalid("step_percent %v is not in (0, 100]", p)
	case p < MinStepPercent:
		return invalid("step_percent %v is below %v: the squeeze would take more than 1,000 steps", p, MinStepPercent)
	}
	switch m := r.MaxP99Millis; {
	case m == 0:
	case !(m > 0) || math.IsInf(m, 1):
		return invalid("max_p99_ms %v: want a latency in milliseconds above 0, such as 50", m)
	}
	switch e := r.MaxErrorRatio; {
	case e == 0:
	case !(e > 0 && e <= 1):
		return invalid("max_error_ratio %v is not in (0, 1]: want a share of requests, such as 0.01", e)
	}
	return nil
}

func (r *Request) step() (time.Duration, error) {
	if r.Step == "" {
		return DefaultStep, nil
	}
	d, err := time.ParseDuration(r.Step)
	switch {
	case err != nil:
		return 0, invalid("step %q is not a duration: want one such as \"10s\"", r.Step)
	case d < MinStep:
		return 0, invalid("step %v is shorter than %v: a step needs a heartbeat after it starts", d, MinStep)
	case d > MaxStep:
		return 0, invalid("step %v is longer than %v", d, MaxStep)
	}
	return d, nil
}

// Squeeze returns the record of a new squeeze for the request, with the
// defaults filled in, running and at version 1: what Runner.Start
// proposes. id names the squeeze (1 to 64 letters, digits, '-' or '_');
// by is who asked, now when.
func (r *Request) Squeeze(id, by string, now time.Time) (*fsm.Squeeze, error) {
	if err := fillcast.ValidateTitleID(id); err != nil {
		return nil, invalid("id: %v", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	step, _ := r.step()
	q := &fsm.Squeeze{
		ID: id, Appliance: r.Appliance, StepPercent: r.StepPercent, Step: step,
		MaxP99Millis: r.MaxP99Millis, MaxErrorRatio: r.MaxErrorRatio,
		Status: fsm.SqueezeRunning, StartedBy: by, Started: now, Updated: now, Version: 1,
	}
	if q.StepPercent == 0 {
		q.StepPercent = DefaultStepPercent
	}
	if q.MaxP99Millis == 0 {
		q.MaxP99Millis = DefaultMaxP99Millis
	}
	if q.MaxErrorRatio == 0 {
		q.MaxErrorRatio = DefaultMaxErrorRatio
	}
	return q, nil
}
